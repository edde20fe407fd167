package scale

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pgbq/pgbq/internal/loader"
	"github.com/pgbq/pgbq/internal/logging"
)

// Production times of the old push design; a run multiplies each by
// Options.TimeScale.
const (
	// CloudRunQueueWait: when every instance is busy, Cloud Run holds a
	// request about this long, then answers 429 ("About instance
	// autoscaling").
	CloudRunQueueWait = 10 * time.Second
	// AckDeadline: a push request not answered by then is a failed
	// delivery; Cloud Run does not stop the request.
	AckDeadline = 600 * time.Second
	// MinBackoff and MaxBackoff: the subscription's retry policy
	// (exponential between them).
	MinBackoff = 10 * time.Second
	MaxBackoff = 600 * time.Second
	// PushBudget: the loader's LOADER_BUDGET default for push requests.
	PushBudget = 480 * time.Second
)

// pushSim is a push subscription in front of a Cloud Run service of
// len(instances) instances with one request per instance. Every message is
// pushed as soon as it is published or its backoff has passed (the real
// service adapts its push rate to the success rate; this stand-in does
// not, so it shows the most a backlog can burn); a failed delivery (429,
// 5xx, no answer within the ack deadline) is retried after the retry
// policy's backoff and dead-lettered after MaxDeliveryAttempts.
type pushSim struct {
	ctx       context.Context
	scale     float64
	instances chan *loader.Service
	wg        sync.WaitGroup // messages not yet acked or dead-lettered, and requests running

	mu           sync.Mutex
	deliveries   int
	tooMany      int // 429s
	lateAnswers  int // answers after the ack deadline
	deadLettered map[string]bool
}

func (p *pushSim) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * p.scale)
}

// Publish stores a message; it is pushed at once, for as long as the run
// lasts (not the publisher's ctx).
func (p *pushSim) Publish(_ context.Context, data []byte) error {
	p.wg.Add(1)
	go p.deliver(p.ctx, append([]byte(nil), data...)) //nolint:contextcheck // a stored message outlives its publisher
	return nil
}

func (p *pushSim) deliver(ctx context.Context, data []byte) {
	defer p.wg.Done()
	backoff := MinBackoff
	for attempt := 1; ; attempt++ {
		p.mu.Lock()
		p.deliveries++
		p.mu.Unlock()
		if p.attempt(ctx, data, attempt) {
			return
		}
		if attempt >= MaxDeliveryAttempts {
			p.mu.Lock()
			p.deadLettered[string(data)] = true
			p.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.scaled(backoff)):
		}
		backoff = min(2*backoff, MaxBackoff)
	}
}

// attempt is one push request: it waits for a free instance for at most
// CloudRunQueueWait (then 429), and succeeds when the loader answers 2xx
// within the ack deadline.
func (p *pushSim) attempt(ctx context.Context, data []byte, n int) bool {
	var svc *loader.Service
	select {
	case svc = <-p.instances:
	case <-time.After(p.scaled(CloudRunQueueWait)):
		p.mu.Lock()
		p.tooMany++
		p.mu.Unlock()
		return false
	case <-ctx.Done():
		return false
	}
	done := make(chan error, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		log := logging.From(ctx).With("delivery_attempt", n)
		err := svc.Handle(logging.With(ctx, log), data)
		p.instances <- svc
		done <- err
	}()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(p.scaled(AckDeadline)):
		p.mu.Lock()
		p.lateAnswers++
		p.mu.Unlock()
		return false
	case <-ctx.Done():
		return false
	}
}

// push runs the back-fill the old way: one planner run publishes up to
// MaxDatesPerRun dates to a push subscription in front of Loaders Cloud
// Run instances, one request each. The run ends when every message was
// acked or dead-lettered (the next planner run, an hour later, would
// publish the dead-lettered dates again).
func (r *run) push(ctx context.Context, rep *Report) error {
	p := &pushSim{ctx: ctx, scale: r.opt.TimeScale, instances: make(chan *loader.Service, len(r.instances)),
		deadLettered: map[string]bool{}}
	for _, in := range r.instances {
		p.instances <- &loader.Service{Syncers: map[string]*loader.Syncer{Table: in.syncer}, Pub: p, Budget: p.scaled(PushBudget)}
	}
	rep.Note = fmt.Sprintf("push: times scaled by %g: Cloud Run queue wait %s -> %s, ack deadline %s -> %s, retry backoff %s..%s -> %s..%s, loader budget %s -> %s",
		p.scale, CloudRunQueueWait, p.scaled(CloudRunQueueWait), AckDeadline, p.scaled(AckDeadline),
		MinBackoff, MaxBackoff, p.scaled(MinBackoff), p.scaled(MaxBackoff), PushBudget, p.scaled(PushBudget))
	r.logf("%s", rep.Note)
	planned, err := r.planner(p).Run(ctx)
	if err != nil {
		return err
	}
	r.logf("planner published %d dates (cap %d per run)", len(planned), r.opt.MaxDatesPerRun)
	drained := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the push deliveries: %w", ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rep.Deliveries, rep.DeadLettered = p.deliveries, len(p.deadLettered)
	r.logf("push: %d deliveries, %d answered 429 after the queue wait, %d answered after the ack deadline, %d dates dead-lettered",
		p.deliveries, p.tooMany, p.lateAnswers, len(p.deadLettered))
	if ctx.Err() != nil {
		return errors.New("push run cut short")
	}
	return nil
}
