package loader

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/pgbq/pgbq/internal/logging"
)

// PullBudget is how long a pulled message may work on its date before a
// continuation takes over. The client extends the message's lease for as
// long as it works (StreamingPull), so unlike a push request nothing ends
// it at 600 s: a date is normally worked to its end in one delivery.
const PullBudget = 2 * time.Hour

// Receive pulls date messages from sub and works them with svc until ctx
// ends or, with idle > 0, until nothing has arrived for idle: at most
// concurrency outstanding at a time (flow control: the backlog waits in
// Pub/Sub, it does not fail), leases extended automatically while a date
// is worked, acks confirmed (with exactly-once delivery on the
// subscription an ack can fail, e.g. after the lease was lost; the date is
// then delivered again, which the loader absorbs). svc's budget is
// replaced by PullBudget. It logs with the logger in ctx.
func Receive(ctx context.Context, sub *pubsub.Subscriber, svc *Service, concurrency int, idle time.Duration) error {
	logger := logging.From(ctx)
	sub.ReceiveSettings.MaxOutstandingMessages = concurrency
	sub.ReceiveSettings.MaxExtension = PullBudget + FinishTime + 10*time.Minute
	pullSvc := *svc
	pullSvc.Budget = PullBudget
	svc = &pullSvc
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var active atomic.Int64
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	if idle > 0 {
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-rctx.Done():
					return
				case <-t.C:
					if active.Load() == 0 && time.Since(time.Unix(0, last.Load())) > idle {
						logger.Info("no messages; exiting", "idle_ms", idle.Milliseconds())
						cancel()
						return
					}
				}
			}
		}()
	}
	logger.Info("pulling", "subscription", sub.String())
	err := sub.Receive(rctx, func(mctx context.Context, m *pubsub.Message) {
		active.Add(1)
		defer func() {
			last.Store(time.Now().UnixNano())
			active.Add(-1)
		}()
		log := logger.With("message_id", m.ID)
		if m.DeliveryAttempt != nil { // set when the subscription dead-letters
			log = log.With("delivery_attempt", *m.DeliveryAttempt)
		}
		if err := svc.Handle(logging.With(ctx, log), m.Data); err != nil {
			// Pub/Sub's retry backoff applies to push; pulling, we pause.
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
			m.Nack()
			return
		}
		if _, err := m.AckWithResult().Get(ctx); err != nil {
			log.Warn("ack not confirmed; the message will be delivered again", "error", err.Error())
		}
	})
	if err != nil && ctx.Err() == nil && rctx.Err() == nil {
		return fmt.Errorf("receive from %s: %w", sub.String(), err)
	}
	return nil
}
