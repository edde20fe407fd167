package localpubsub

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	// keepEvery is how often the keeper parks new messages and takes back
	// those whose lease ran out.
	keepEvery = 100 * time.Millisecond
	// defaultRetention is real Pub/Sub's default message_retention_duration.
	defaultRetention = 7 * 24 * time.Hour
	// noLimit stands for max_outstanding_messages <= 0, which the API
	// documents as no limit.
	noLimit = 1 << 30
)

// front serves Pub/Sub's API with pstest's own methods (GServer, embedded),
// except those defined here: the ones that hand messages out and take them
// back.
//
// A message's life: published to pstest; taken by the keeper with pstest's
// unary Pull and parked, on a pstest lease as long as the subscription's
// retention, so that pstest never makes it available again (its purge only
// deletes available messages); handed to a client when a stream has room,
// under an ack id of the front's that names the delivery; acked (the front
// acks it in pstest), or nacked or let lapse (the front parks it again and
// counts the attempt, dead-lettering it after max_delivery_attempts as
// pstest would).
type front struct {
	*pstest.GServer
	now func() time.Time

	mu         sync.Mutex
	subs       map[string]*queue // by subscription name
	out        map[string]*entry // front ack id -> message out on a lease
	deliveries map[string]int    // message id -> hand-outs to clients
	kick       chan struct{}     // wakes the keeper: a publish or a nack
}

// queue is a subscription's messages that the front holds and no client has.
type queue struct {
	name        string
	ackDeadline time.Duration
	retention   time.Duration
	deadLetter  *pb.DeadLetterPolicy
	props       *pb.StreamingPullResponse_SubscriptionProperties
	parked      []*entry      // oldest first
	grown       chan struct{} // closed when parked grows, then replaced
}

// entry is one message of one subscription.
type entry struct {
	q        *queue
	msg      *pb.ReceivedMessage // as last handed out
	psAckID  string              // pstest's ack id, leased for the retention
	attempts int                 // hand-outs to clients
	end      time.Time           // while out: the lease's end
	st       *stream             // while out on a stream: that stream
}

// stream is one StreamingPull: how many messages it may hold, and holds.
type stream struct {
	max, held int
	deadline  time.Duration // the stream's ack deadline
	freed     chan struct{} // a held message was acked, nacked or lapsed
}

func newFront(g *pstest.GServer, now func() time.Time) *front {
	return &front{GServer: g, now: now, subs: map[string]*queue{}, out: map[string]*entry{},
		deliveries: map[string]int{}, kick: make(chan struct{}, 1)}
}

func (f *front) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// keep parks every subscription's new messages and takes back lapsed
// leases until ctx ends.
func (f *front) keep(ctx context.Context) {
	t := time.NewTicker(keepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
		f.expire()
		f.mu.Lock()
		qs := make([]*queue, 0, len(f.subs))
		for _, q := range f.subs {
			qs = append(qs, q)
		}
		f.mu.Unlock()
		for _, q := range qs {
			_ = f.park(ctx, q) // a failed park is tried again on the next tick
		}
	}
}

// park takes q's new messages from pstest and holds them on a pstest lease
// as long as q's retention.
func (f *front) park(ctx context.Context, q *queue) error {
	const batch = 1000
	f.mu.Lock()
	retention := q.retention
	f.mu.Unlock()
	for {
		// Without ReturnImmediately, pstest's Pull waits 500 ms for a message.
		res, err := f.GServer.Pull(ctx, &pb.PullRequest{Subscription: q.name, MaxMessages: batch, ReturnImmediately: true}) //nolint:staticcheck // see above
		if status.Code(err) == codes.NotFound {
			f.forget(q.name)
		}
		if err != nil || len(res.ReceivedMessages) == 0 {
			return err
		}
		// pstest hands out its own records; copy them while they are ours
		// (pstest rewrites a record's ack id when it delivers it again).
		es := make([]*entry, len(res.ReceivedMessages))
		ids := make([]string, len(es))
		for i, m := range res.ReceivedMessages {
			es[i] = &entry{q: q, msg: proto.Clone(m).(*pb.ReceivedMessage), psAckID: m.AckId}
			ids[i] = m.AckId
		}
		if _, err := f.GServer.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: q.name, AckIds: ids,
			AckDeadlineSeconds: int32(retention / time.Second)}); err != nil {
			return err
		}
		sort.SliceStable(es, func(i, j int) bool {
			return es[i].msg.Message.PublishTime.AsTime().Before(es[j].msg.Message.PublishTime.AsTime())
		})
		f.mu.Lock()
		f.requeueLocked(q, es...)
		f.mu.Unlock()
		if len(es) < batch {
			return nil
		}
	}
}

// requeueLocked parks es at the end of q. Call with f.mu held.
func (f *front) requeueLocked(q *queue, es ...*entry) {
	q.parked = append(q.parked, es...)
	close(q.grown)
	q.grown = make(chan struct{})
}

// expire takes back the messages whose lease ran out.
func (f *front) expire() {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, e := range f.out {
		if now.After(e.end) {
			f.takeBackLocked(id, e)
		}
	}
}

// takeBackLocked ends e's lease (front ack id id) and parks it again for
// another attempt. Call with f.mu held.
func (f *front) takeBackLocked(id string, e *entry) {
	f.releaseLocked(id, e)
	if f.subs[e.q.name] == e.q {
		f.requeueLocked(e.q, e)
	}
}

// releaseLocked ends e's lease and frees its stream slot.
func (f *front) releaseLocked(id string, e *entry) {
	delete(f.out, id)
	if e.st != nil {
		e.st.held--
		select {
		case e.st.freed <- struct{}{}:
		default:
		}
		e.st = nil
	}
}

// lot is what one hand-out decided: messages to send, and messages to
// drop in pstest (past retention) or to dead-letter first.
type lot struct {
	out     []*pb.ReceivedMessage
	dropped []string
	dead    []*entry
}

// takeLocked hands out up to n of q's parked messages, oldest first, to st
// (nil for a unary Pull) for d. Call with f.mu held, then settle the lot.
func (f *front) takeLocked(q *queue, n int, st *stream, d time.Duration) lot {
	var l lot
	now := f.now()
	i := 0
	for ; i < len(q.parked) && len(l.out) < n; i++ {
		e := q.parked[i]
		switch {
		case now.Sub(e.msg.Message.PublishTime.AsTime()) > q.retention:
			l.dropped = append(l.dropped, e.psAckID)
		case q.deadLetter != nil && e.attempts >= int(q.deadLetter.MaxDeliveryAttempts):
			l.dead = append(l.dead, e)
		default:
			e.attempts++
			f.deliveries[e.msg.Message.MessageId]++
			e.msg.AckId = fmt.Sprintf("%s/%d", e.psAckID, e.attempts)
			if q.deadLetter != nil {
				e.msg.DeliveryAttempt = int32(e.attempts)
			}
			e.end, e.st = now.Add(d), st
			if st != nil {
				st.held++
			}
			f.out[e.msg.AckId] = e
			l.out = append(l.out, proto.Clone(e.msg).(*pb.ReceivedMessage))
		}
	}
	q.parked = q.parked[i:]
	return l
}

// settle drops a lot's expired messages and forwards its dead letters,
// as real Pub/Sub does (the message to the dead-letter topic, then removed
// from the subscription).
func (f *front) settle(ctx context.Context, q *queue, l lot) error {
	for _, e := range l.dead {
		if _, err := f.GServer.Publish(ctx, &pb.PublishRequest{Topic: q.deadLetter.DeadLetterTopic, Messages: []*pb.PubsubMessage{{
			Data: e.msg.Message.Data, Attributes: e.msg.Message.Attributes, OrderingKey: e.msg.Message.OrderingKey}}}); err != nil {
			return fmt.Errorf("dead-letter %s: %w", e.msg.Message.MessageId, err)
		}
		l.dropped = append(l.dropped, e.psAckID)
	}
	if len(l.dropped) == 0 {
		return nil
	}
	_, err := f.GServer.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: q.name, AckIds: l.dropped})
	return err
}

// queue returns the front's queue of the subscription name.
func (f *front) queue(ctx context.Context, name string) (*queue, error) {
	f.mu.Lock()
	q := f.subs[name]
	f.mu.Unlock()
	if q != nil {
		return q, nil
	}
	sub, err := f.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: name}) // pstest's
	if err != nil {
		return nil, err
	}
	return f.register(sub), nil
}

// register starts keeping sub's messages, or updates its settings.
func (f *front) register(sub *pb.Subscription) *queue {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.subs[sub.Name]
	if q == nil {
		q = &queue{name: sub.Name, grown: make(chan struct{})}
		f.subs[sub.Name] = q
	}
	q.ackDeadline = time.Duration(sub.AckDeadlineSeconds) * time.Second
	if q.ackDeadline <= 0 {
		q.ackDeadline = 10 * time.Second // the API's default
	}
	q.retention = sub.MessageRetentionDuration.AsDuration()
	if q.retention <= 0 {
		q.retention = defaultRetention
	}
	q.deadLetter = sub.DeadLetterPolicy
	q.props = &pb.StreamingPullResponse_SubscriptionProperties{
		ExactlyOnceDeliveryEnabled: sub.EnableExactlyOnceDelivery, MessageOrderingEnabled: sub.EnableMessageOrdering}
	return q
}

func (f *front) forget(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, name)
}

// CreateSubscription creates the subscription in pstest and keeps its
// messages from the start.
func (f *front) CreateSubscription(ctx context.Context, req *pb.Subscription) (*pb.Subscription, error) {
	sub, err := f.GServer.CreateSubscription(ctx, req)
	if err == nil {
		f.register(sub)
	}
	return sub, err
}

// UpdateSubscription updates pstest and the front's copy of the settings.
func (f *front) UpdateSubscription(ctx context.Context, req *pb.UpdateSubscriptionRequest) (*pb.Subscription, error) {
	sub, err := f.GServer.UpdateSubscription(ctx, req)
	if err == nil {
		f.register(sub)
	}
	return sub, err
}

// DeleteSubscription deletes it in pstest and forgets what the front held.
func (f *front) DeleteSubscription(ctx context.Context, req *pb.DeleteSubscriptionRequest) (*emptypb.Empty, error) {
	out, err := f.GServer.DeleteSubscription(ctx, req)
	if err == nil {
		f.forget(req.Subscription)
	}
	return out, err
}

// Seek would rewrite pstest's acks under messages the front holds.
func (f *front) Seek(context.Context, *pb.SeekRequest) (*pb.SeekResponse, error) {
	return nil, status.Error(codes.Unimplemented, "localpubsub: Seek is not supported")
}

// Publish stores the messages in pstest and wakes the keeper to park them.
func (f *front) Publish(ctx context.Context, req *pb.PublishRequest) (*pb.PublishResponse, error) {
	out, err := f.GServer.Publish(ctx, req)
	f.wake()
	return out, err
}

// Acknowledge acks the messages of current deliveries in pstest; an ack id
// of an earlier delivery of a message (its lease lapsed, it went out
// again) is ignored.
func (f *front) Acknowledge(ctx context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	if _, err := f.queue(ctx, req.Subscription); err != nil {
		return nil, err
	}
	var ids []string
	f.mu.Lock()
	for _, id := range req.AckIds {
		if e := f.out[id]; e != nil && e.q.name == req.Subscription {
			f.releaseLocked(id, e)
			ids = append(ids, e.psAckID)
		}
	}
	f.mu.Unlock()
	if len(ids) == 0 {
		return &emptypb.Empty{}, nil
	}
	return f.GServer.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: req.Subscription, AckIds: ids})
}

// ModifyAckDeadline extends leases; 0 s is a nack, which parks the
// messages again for another attempt.
func (f *front) ModifyAckDeadline(ctx context.Context, req *pb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	if _, err := f.queue(ctx, req.Subscription); err != nil {
		return nil, err
	}
	end := f.now().Add(time.Duration(req.AckDeadlineSeconds) * time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range req.AckIds {
		e := f.out[id]
		switch {
		case e == nil || e.q.name != req.Subscription:
		case req.AckDeadlineSeconds <= 0:
			f.takeBackLocked(id, e)
		default:
			e.end = end
		}
	}
	return &emptypb.Empty{}, nil
}

// Pull hands out parked messages, waiting up to 500 ms for one unless
// ReturnImmediately (pstest's own wait).
func (f *front) Pull(ctx context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	if req.MaxMessages < 0 {
		return nil, status.Error(codes.InvalidArgument, "MaxMessages cannot be negative")
	}
	q, err := f.queue(ctx, req.Subscription)
	if err != nil {
		return nil, err
	}
	n := int(req.MaxMessages)
	if n == 0 {
		n = 1000
	}
	wait := time.NewTimer(500 * time.Millisecond)
	defer wait.Stop()
	for last := req.ReturnImmediately; ; { //nolint:staticcheck // deprecated, still sent by clients; pstest honours it too
		f.expire()
		if err := f.park(ctx, q); err != nil {
			return nil, err
		}
		f.mu.Lock()
		l := f.takeLocked(q, n, nil, q.ackDeadline)
		grown := q.grown
		f.mu.Unlock()
		if err := f.settle(ctx, q, l); err != nil {
			return nil, err
		}
		if len(l.out) > 0 || last {
			return &pb.PullResponse{ReceivedMessages: l.out}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-grown:
		case <-wait.C:
			last = true
		}
	}
}
