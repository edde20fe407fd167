package localpubsub_test

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pgbq/pgbq/internal/localpubsub"
	"github.com/pgbq/pgbq/internal/testenv"
)

// go test ./internal/localpubsub -bare runs these tests against pstest
// alone: each then fails, showing the gap the front corrects.
var bare = flag.Bool("bare", false, "serve from pstest alone, without the front (the tests then fail)")

const (
	topic = "projects/local/topics/dates"
	sub   = "projects/local/subscriptions/dates-loader"
	dlq   = "projects/local/topics/dlq"
)

// clock is pstest's and the front's clock: set by the test, or running
// speed times faster than real time.
type clock struct {
	mu    sync.Mutex
	at    time.Time
	speed float64
	since time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.speed > 0 {
		return c.at.Add(time.Duration(float64(time.Since(c.since)) * c.speed))
	}
	return c.at
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

type env struct {
	addr   string
	fake   *pstest.Server
	client *pubsub.Client
}

// newEnv serves Pub/Sub on the clock now with the topics and a pull
// subscription s of the dates topic (its name and topic are set here).
func newEnv(t *testing.T, now func() time.Time, s *pb.Subscription) *env {
	t.Helper()
	e := &env{}
	if *bare {
		e.fake = pstest.NewServer()
		e.fake.SetTimeNowFunc(now)
		t.Cleanup(func() { e.fake.Close() })
		e.addr = e.fake.Addr
	} else {
		srv, err := localpubsub.StartWithClock(t.Context(), now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		e.addr, e.fake = srv.Addr, srv.Fake
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := pubsub.NewClient(ctx, "local", option.WithEndpoint(e.addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.client = c
	for _, name := range []string{topic, dlq} {
		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	s.Name, s.Topic = sub, topic
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, s); err != nil {
		t.Fatal(err)
	}
	return e
}

// publish publishes n messages, from first on, named m<i>.
func (e *env) publish(t *testing.T, first, n int) {
	t.Helper()
	p := e.client.Publisher("dates")
	defer p.Stop()
	var rs []*pubsub.PublishResult
	for i := first; i < first+n; i++ {
		rs = append(rs, p.Publish(t.Context(), &pubsub.Message{Data: fmt.Appendf(nil, "m%03d", i)}))
	}
	for _, r := range rs {
		if _, err := r.Get(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) pull(t *testing.T, max int32) []*pb.ReceivedMessage {
	t.Helper()
	res, err := e.client.SubscriptionAdminClient.Pull(t.Context(), &pb.PullRequest{Subscription: sub, MaxMessages: max})
	if err != nil {
		t.Fatal(err)
	}
	return res.ReceivedMessages
}

func (e *env) ack(t *testing.T, msgs []*pb.ReceivedMessage) {
	t.Helper()
	for _, m := range msgs {
		if err := e.client.SubscriptionAdminClient.Acknowledge(t.Context(),
			&pb.AcknowledgeRequest{Subscription: sub, AckIds: []string{m.AckId}}); err != nil {
			t.Fatal(err)
		}
	}
}

// A stream that may hold 2 unacked messages is sent 2; the others wait in
// the subscription for another stream, and an ack frees a slot. (pstest
// keeps pushing messages into the first stream.)
func TestStreamIsSentNoMoreThanMaxOutstanding(t *testing.T) {
	e := newEnv(t, time.Now, &pb.Subscription{AckDeadlineSeconds: 60})
	e.publish(t, 0, 20)
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	recv := func(st pb.Subscriber_StreamingPullClient, n int) []*pb.ReceivedMessage {
		var got []*pb.ReceivedMessage
		for len(got) < n {
			res, err := st.Recv()
			if err != nil {
				t.Fatalf("stream ended after %d of %d messages: %v", len(got), n, err)
			}
			got = append(got, res.ReceivedMessages...)
		}
		return got
	}
	a, err := pb.NewSubscriberClient(conn).StreamingPull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Send(&pb.StreamingPullRequest{Subscription: sub, StreamAckDeadlineSeconds: 60, MaxOutstandingMessages: 2}); err != nil {
		t.Fatal(err)
	}
	held := recv(a, 2)
	if len(held) != 2 {
		t.Fatalf("stream with max_outstanding_messages=2 was sent %d messages at once", len(held))
	}
	bctx, closeB := context.WithCancel(ctx)
	b, err := pb.NewSubscriberClient(conn).StreamingPull(bctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send(&pb.StreamingPullRequest{Subscription: sub, StreamAckDeadlineSeconds: 60, MaxOutstandingMessages: 100}); err != nil {
		t.Fatal(err)
	}
	if got := recv(b, 18); len(got) != 18 {
		t.Fatalf("second stream was sent %d messages, want the 18 the first had no room for", len(got))
	}
	closeB()
	e.publish(t, 20, 1)
	if err := a.Send(&pb.StreamingPullRequest{AckIds: []string{held[0].AckId}}); err != nil {
		t.Fatal(err)
	}
	if got := recv(a, 1); len(got) != 1 || string(got[0].Message.Data) != "m020" {
		t.Fatalf("after an ack, the first stream got %v; want m020", got)
	}
}

// The Go client working through a backlog: every message is handled once
// and acked once. (pstest starts a message's lease when it enters the
// stream; the client reads the stream only as fast as it works, so unread
// messages lapse, are sent again, and the client's ack of the stale copy
// is ignored: the acked message comes back.) The clock runs 30 times
// faster than real time: the stream's 60 s leases last 2 s, the client's
// 600 s extensions of what it holds 20 s.
func TestAckedMessageIsNotDeliveredAgain(t *testing.T) {
	start := time.Now()
	c := &clock{at: start, speed: 30, since: start}
	e := newEnv(t, c.now, &pb.Subscription{AckDeadlineSeconds: 60})
	const n = 80
	e.publish(t, 0, n)
	var mu sync.Mutex
	handled := map[string]int{}
	s := e.client.Subscriber("dates-loader")
	s.ReceiveSettings.MaxOutstandingMessages = 2
	s.ReceiveSettings.MinDurationPerAckExtension = 600 * time.Second
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- s.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
			mu.Lock()
			handled[string(m.Data)]++
			mu.Unlock()
			time.Sleep(100 * time.Millisecond) // a date's work: 80 take 4 s or more
			m.Ack()
		})
	}()
	testenv.WaitFor(t, 2*time.Minute, "every message to be acked", func() bool {
		for _, m := range e.fake.Messages() {
			if m.Acks == 0 {
				return false
			}
		}
		return true
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	again := 0
	for _, k := range handled {
		again += k - 1
	}
	if len(handled) != n || again > 0 {
		t.Fatalf("%d messages handled, %d of their deliveries were repeats; want %d, 0", len(handled), again, n)
	}
}

// A message that waits longer than pstest's ten-minute purge is still
// delivered, and delivered again when its lease lapses; one older than the
// subscription's retention is not.
func TestUnackedMessageIsKeptForTheRetention(t *testing.T) {
	c := &clock{at: time.Now()}
	e := newEnv(t, c.now, &pb.Subscription{AckDeadlineSeconds: 10, MessageRetentionDuration: durationpb.New(time.Hour)})
	e.publish(t, 0, 3)
	first := e.pull(t, 1)
	if len(first) != 1 {
		t.Fatalf("pulled %d messages, want 1", len(first))
	}
	e.ack(t, first)

	c.advance(11 * time.Minute)
	rest := e.pull(t, 10)
	if len(rest) != 2 {
		t.Fatalf("11 minutes after publishing, %d of 2 unacked messages were delivered", len(rest))
	}
	c.advance(time.Minute) // their 10 s leases lapse
	again := e.pull(t, 10)
	if len(again) != 2 {
		t.Fatalf("after their leases lapsed, %d of 2 unacked messages were delivered again", len(again))
	}
	e.ack(t, again)
	e.publish(t, 3, 2)
	e.ack(t, e.pull(t, 1))

	c.advance(61 * time.Minute)
	if late := e.pull(t, 10); len(late) != 0 {
		t.Fatalf("61 minutes after publishing, with a retention of 60, %d messages were delivered", len(late))
	}
}

// A message nacked max_delivery_attempts times goes to the dead-letter
// topic. The front redelivers, so it dead-letters as pstest would (this
// test passes on bare pstest too).
func TestNackedMessageIsDeadLettered(t *testing.T) {
	e := newEnv(t, time.Now, &pb.Subscription{AckDeadlineSeconds: 10,
		DeadLetterPolicy: &pb.DeadLetterPolicy{DeadLetterTopic: dlq, MaxDeliveryAttempts: 5}})
	ctx := t.Context()
	if _, err := e.client.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{
		Name: "projects/local/subscriptions/dlq", Topic: dlq}); err != nil {
		t.Fatal(err)
	}
	e.publish(t, 0, 1)
	for attempt := int32(1); attempt <= 5; attempt++ {
		msgs := e.pull(t, 1)
		if len(msgs) != 1 || msgs[0].DeliveryAttempt != attempt {
			t.Fatalf("delivery %d: got %v", attempt, msgs)
		}
		if err := e.client.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{
			Subscription: sub, AckIds: []string{msgs[0].AckId}}); err != nil {
			t.Fatal(err)
		}
	}
	if msgs := e.pull(t, 1); len(msgs) != 0 {
		t.Fatalf("after 5 nacks with max_delivery_attempts=5, delivered again: %v", msgs)
	}
	testenv.WaitFor(t, 10*time.Second, "the message on the dead-letter subscription", func() bool {
		res, err := e.client.SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: "projects/local/subscriptions/dlq",
			MaxMessages: 1})
		return err == nil && len(res.ReceivedMessages) == 1 && string(res.ReceivedMessages[0].Message.Data) == "m000"
	})
}
