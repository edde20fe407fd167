package scale

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgbq/pgbq/internal/loader"
	"github.com/pgbq/pgbq/internal/localpubsub"
	"github.com/pgbq/pgbq/internal/pubsubx"
)

const (
	psProject = "scale"
	topicID   = "dates"
	subID     = "dates-loader"
	dlqID     = "dates-dlq"
	// MaxDeliveryAttempts is the subscriptions' dead-letter policy.
	MaxDeliveryAttempts = 10
)

func topicName(id string) string { return "projects/" + psProject + "/topics/" + id }

func psClient(ctx context.Context, addr string) (*pubsub.Client, error) {
	return pubsub.NewClient(ctx, psProject, option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
}

// pull runs the back-fill the deployed way: the planner publishes every
// date to a topic; each loader holds one StreamingPull on the
// subscription with Outstanding messages at most (loader.Receive, the loader
// binary's own pull code), its lease extended while the date is worked;
// the subscription dead-letters after MaxDeliveryAttempts.
func (r *run) pull(ctx context.Context, rep *Report) error {
	local, err := localpubsub.New(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer local.Close()
	admin, err := psClient(ctx, local.Addr)
	if err != nil {
		return err
	}
	defer admin.Close()
	for _, t := range []string{topicID, dlqID} {
		if _, err := admin.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName(t)}); err != nil {
			return err
		}
	}
	// The dead-letter topic needs a subscription of its own, or what is
	// dead-lettered is dropped.
	if _, err := admin.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + psProject + "/subscriptions/" + dlqID, Topic: topicName(dlqID)}); err != nil {
		return err
	}
	if _, err := admin.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + psProject + "/subscriptions/" + subID, Topic: topicName(topicID),
		AckDeadlineSeconds: 60, EnableExactlyOnceDelivery: true,
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: topicName(dlqID), MaxDeliveryAttempts: MaxDeliveryAttempts},
	}); err != nil {
		return err
	}
	pub := pubsubx.NewPublisher(admin, topicID)
	defer pub.Stop()

	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, len(r.instances))
	for i, in := range r.instances {
		// One client per loader, as separate processes would have.
		c, err := psClient(ctx, local.Addr)
		if err != nil {
			stop()
			return err
		}
		defer c.Close()
		svc := &loader.Service{Syncers: map[string]*loader.Syncer{Table: in.syncer}, Pub: pub, Budget: loader.PullBudget}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loader.Receive(wctx, c.Subscriber(subID), svc, r.opt.Outstanding, 0); err != nil {
				errs <- fmt.Errorf("loader %d: %w", i, err)
			}
		}()
	}
	planned, err := r.planner(pub).Run(ctx)
	if err == nil {
		r.logf("planner published %d dates", len(planned))
		err = waitDrained(ctx, local.Fake, r.logf)
	}
	stop()
	wg.Wait()
	close(errs)
	for e := range errs {
		err = e
	}
	if err != nil {
		return err
	}
	rep.Deliveries, rep.DeadLettered = countPstest(local)
	return nil
}

// waitDrained waits until every message of the dates topic is acked or
// dead-lettered.
func waitDrained(ctx context.Context, ps *pstest.Server, logf func(string, ...any)) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	lastLog := time.Now()
	for {
		msgs, pending := 0, 0
		dead := map[string]bool{}
		all := ps.Messages()
		for _, m := range all {
			if m.Topic == topicName(dlqID) {
				dead[string(m.Data)] = true
			}
		}
		for _, m := range all {
			if m.Topic != topicName(topicID) {
				continue
			}
			msgs++
			if m.Acks == 0 && !(dead[string(m.Data)] && m.Deliveries >= MaxDeliveryAttempts) {
				pending++
			}
		}
		if msgs > 0 && pending == 0 {
			return nil
		}
		if time.Since(lastLog) > 15*time.Second {
			logf("%d of %d messages not yet acked", pending, msgs)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the back-fill (%d of %d messages not acked): %w", pending, msgs, ctx.Err())
		case <-t.C:
		}
	}
}

// countPstest sums the deliveries of the dates topic's messages and counts
// the dates that reached the dead-letter topic (count dates, not copies).
func countPstest(local *localpubsub.Server) (deliveries, deadDates int) {
	dead := map[string]bool{}
	handedOut := local.Deliveries()
	for _, m := range local.Fake.Messages() {
		switch m.Topic {
		case topicName(topicID):
			deliveries += handedOut[m.ID]
		case topicName(dlqID):
			dead[string(m.Data)] = true
		}
	}
	return deliveries, len(dead)
}
