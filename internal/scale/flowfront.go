package scale

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

// flowFront serves Pub/Sub's Subscriber API in front of pstest and, unlike
// pstest, honours a StreamingPull's max_outstanding_messages the way the
// real service does: a stream is sent a message only while fewer than that
// many of its messages are unacked, so a backlog waits in the subscription
// instead of in a busy worker's stream buffer (where pstest would let its
// lease lapse, deliver it again and count the attempts toward the
// dead-letter policy). Messages are taken from pstest with unary Pull
// (which waits up to 500 ms for one when there is none), so
// pstest still counts delivery attempts, tracks ack deadlines and
// dead-letters; acks and lease extensions are passed through.
type flowFront struct {
	pb.UnimplementedSubscriberServer
	up   pb.SubscriberClient
	conn *grpc.ClientConn
	srv  *grpc.Server
	addr string

	mu    sync.Mutex
	owner map[string]*flowStream // ack id -> the stream it was sent on
}

type flowStream struct {
	max   int
	held  map[string]time.Time // ack id -> lease deadline
	wake  chan struct{}
	front *flowFront
}

func startFlowFront(ctx context.Context, pstestAddr string) (*flowFront, error) {
	conn, err := grpc.NewClient(pstestAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		conn.Close()
		return nil, err
	}
	f := &flowFront{up: pb.NewSubscriberClient(conn), conn: conn, srv: grpc.NewServer(),
		addr: ln.Addr().String(), owner: map[string]*flowStream{}}
	pb.RegisterSubscriberServer(f.srv, f)
	go f.srv.Serve(ln)
	return f, nil
}

func (f *flowFront) Close() {
	f.srv.Stop()
	f.conn.Close()
}

// release frees the slots of ack ids that were acked or nacked.
func (f *flowFront) release(ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if s := f.owner[id]; s != nil {
			delete(s.held, id)
			delete(f.owner, id)
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}
}

// extend records a lease extension.
func (f *flowFront) extend(ids []string, seconds int32) {
	if seconds <= 0 {
		f.release(ids)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if s := f.owner[id]; s != nil {
			s.held[id] = time.Now().Add(time.Duration(seconds) * time.Second)
		}
	}
}

func (f *flowFront) Acknowledge(ctx context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	out, err := f.up.Acknowledge(ctx, req)
	if err == nil {
		f.release(req.AckIds)
	}
	return out, err
}

func (f *flowFront) ModifyAckDeadline(ctx context.Context, req *pb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	out, err := f.up.ModifyAckDeadline(ctx, req)
	if err == nil {
		f.extend(req.AckIds, req.AckDeadlineSeconds)
	}
	return out, err
}

func (f *flowFront) GetSubscription(ctx context.Context, req *pb.GetSubscriptionRequest) (*pb.Subscription, error) {
	return f.up.GetSubscription(ctx, req)
}

func (f *flowFront) Pull(ctx context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	return f.up.Pull(ctx, req)
}

// free is how many more messages s may be sent; expired leases free their
// slot (pstest delivers those messages again).
func (f *flowFront) free(s *flowStream) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	for id, dl := range s.held {
		if now.After(dl) {
			delete(s.held, id)
			delete(f.owner, id)
		}
	}
	return s.max - len(s.held)
}

func (f *flowFront) StreamingPull(stream pb.Subscriber_StreamingPullServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	sub, err := f.up.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: first.Subscription})
	if err != nil {
		return err
	}
	s := &flowStream{max: int(first.MaxOutstandingMessages), held: map[string]time.Time{}, wake: make(chan struct{}, 1), front: f}
	if s.max <= 0 {
		s.max = 1000
	}
	defer func() {
		f.mu.Lock()
		for id := range s.held {
			delete(f.owner, id)
		}
		f.mu.Unlock()
	}()
	recvErr := make(chan error, 1)
	go func() {
		req := first
		for {
			if len(req.AckIds) > 0 {
				if _, err := f.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: first.Subscription, AckIds: req.AckIds}); err != nil {
					recvErr <- err
					return
				}
			}
			for i, id := range req.ModifyDeadlineAckIds {
				if i < len(req.ModifyDeadlineSeconds) {
					if _, err := f.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: first.Subscription,
						AckIds: []string{id}, AckDeadlineSeconds: req.ModifyDeadlineSeconds[i]}); err != nil {
						recvErr <- err
						return
					}
				}
			}
			var err error
			if req, err = stream.Recv(); err != nil {
				recvErr <- err
				return
			}
		}
	}()
	ackDeadline := time.Duration(sub.AckDeadlineSeconds) * time.Second
	props := &pb.StreamingPullResponse_SubscriptionProperties{ExactlyOnceDeliveryEnabled: sub.EnableExactlyOnceDelivery}
	for {
		select {
		case err := <-recvErr:
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		default:
		}
		if n := f.free(s); n > 0 {
			res, err := f.up.Pull(ctx, &pb.PullRequest{Subscription: first.Subscription, MaxMessages: int32(n)})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if len(res.ReceivedMessages) > 0 {
				f.mu.Lock()
				for _, m := range res.ReceivedMessages {
					s.held[m.AckId] = time.Now().Add(ackDeadline)
					f.owner[m.AckId] = s
				}
				f.mu.Unlock()
				if err := stream.Send(&pb.StreamingPullResponse{ReceivedMessages: res.ReceivedMessages, SubscriptionProperties: props}); err != nil {
					return err
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-recvErr:
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		case <-s.wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
