package localpubsub

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// StreamingPull sends a stream parked messages while it holds fewer than
// its max_outstanding_messages, as real Pub/Sub does; see the package
// comment for what pstest does instead.
func (f *front) StreamingPull(ss pb.Subscriber_StreamingPullServer) error {
	ctx := ss.Context()
	first, err := ss.Recv()
	if err != nil {
		return err
	}
	q, err := f.queue(ctx, first.Subscription)
	if err != nil {
		return err
	}
	st := &stream{max: int(first.MaxOutstandingMessages), freed: make(chan struct{}, 1)}
	if st.max <= 0 {
		st.max = noLimit
	}
	f.mu.Lock()
	st.deadline = q.ackDeadline
	props := q.props
	f.mu.Unlock()
	f.setDeadline(st, first.StreamAckDeadlineSeconds)

	var sendMu sync.Mutex
	send := func(r *pb.StreamingPullResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return ss.Send(r)
	}
	recvErr := make(chan error, 1)
	go func() { recvErr <- f.serveRequests(ctx, ss, first, st, send) }()
	for {
		f.mu.Lock()
		var l lot
		if n := st.max - st.held; n > 0 {
			l = f.takeLocked(q, n, st, st.deadline)
		}
		grown := q.grown
		f.mu.Unlock()
		if err := f.settle(ctx, q, l); err != nil {
			return err
		}
		if len(l.out) > 0 {
			if err := send(&pb.StreamingPullResponse{ReceivedMessages: l.out, SubscriptionProperties: props}); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-recvErr:
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		case <-st.freed:
		case <-grown:
		}
	}
}

// serveRequests passes a stream's acks and lease changes on, and answers
// the client's keep-alive pings (the Go client reopens a stream whose
// server does not answer them).
func (f *front) serveRequests(ctx context.Context, ss pb.Subscriber_StreamingPullServer, req *pb.StreamingPullRequest,
	st *stream, send func(*pb.StreamingPullResponse) error) error {
	sub, version := req.Subscription, req.ProtocolVersion
	for first := true; ; first = false {
		if len(req.AckIds) > 0 {
			if _, err := f.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub, AckIds: req.AckIds}); err != nil {
				return err
			}
		}
		for i, id := range req.ModifyDeadlineAckIds {
			if i >= len(req.ModifyDeadlineSeconds) {
				break
			}
			if _, err := f.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: []string{id},
				AckDeadlineSeconds: req.ModifyDeadlineSeconds[i]}); err != nil {
				return err
			}
		}
		if !first {
			f.setDeadline(st, req.StreamAckDeadlineSeconds)
			if len(req.AckIds) == 0 && len(req.ModifyDeadlineAckIds) == 0 && version >= 1 {
				if err := send(&pb.StreamingPullResponse{}); err != nil {
					return err
				}
			}
		}
		var err error
		if req, err = ss.Recv(); err != nil {
			return err
		}
	}
}

// setDeadline sets the stream's ack deadline when the client names one.
func (f *front) setDeadline(st *stream, seconds int32) {
	if seconds <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st.deadline = time.Duration(seconds) * time.Second
}
