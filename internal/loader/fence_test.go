package loader

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/testenv"
)

// syncBuffer is a log sink several goroutines write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A publish outlives its requester: the loader's MERGE is held PENDING by
// BigQuery, the loader is killed and its cancel is lost. Another request
// finishes the day, whose staging is dropped; the date is delivered again,
// and that request makes a new staging table and loads its first chunk
// before it learns the date is finished. The stale MERGE reads staging by name whenever it runs: run
// then, it would replace the finished day with that one chunk. The fence
// keeps it from doing so: the publish that finished the day first waits
// for every earlier publish of the day to end (here the stale one, whose
// cancel loses again, runs then, on the complete staging it was started
// for), and says so in the log.
func TestStalePublishIsFenced(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: 50 * time.Millisecond, CancelLoses: 1})
	day := time.Date(2024, 11, 20, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 100, false)
	s := r.open(30)
	setNoDirect(s, true)
	var first atomic.Bool
	held, release := proxy.Hold(func(j bqfidelity.HeldJob) bool {
		return j.Kind == "query" && strings.HasPrefix(j.ID, "pgbq_publish_") && first.CompareAndSwap(false, true)
	})
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type result struct {
		out Outcome
		err error
	}
	run := func(ctx context.Context) <-chan result {
		c := make(chan result, 1)
		go func() {
			for {
				out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
				if err != nil || out != Continue {
					c <- result{out, err}
					return
				}
			}
		}()
		return c
	}

	// The first request's MERGE is held; the request is killed.
	ctx1, kill := context.WithCancel(ctx)
	r1 := run(ctx1)
	var stale string
	select {
	case stale = <-held:
	case <-ctx.Done():
		t.Fatal("no publish was held")
	}
	kill()
	if got := <-r1; got.err == nil {
		t.Fatalf("the killed request ended %v without error", got.out)
	}

	// Another request publishes and finishes the day.
	var logs syncBuffer
	r2 := run(logging.With(ctx, logging.New(&logs, "info")))
	var got result
	released := false
	testenv.WaitFor(t, 2*time.Minute, "the second request to end or to fence the stale publish", func() bool {
		select {
		case got = <-r2:
			return true
		default:
		}
		if proxy.Stats().CancelsLost >= 2 {
			release() // the fence's cancel was lost too: the stale job runs now
			released = true
			got = <-r2
			return true
		}
		return false
	})
	if got.err != nil || got.out != Finished {
		t.Fatalf("second request: %v, %v; want finished", got.out, got.err)
	}

	// The finished day's staging goes: its loader's drop, tried once,
	// meets the table's metadata window (its creation and 4 loads) and
	// leaves it to the planner's next run, which drops it as this does.
	if err := r.wh.DropStaging(ctx, day); err != nil {
		t.Fatal(err)
	}

	// The date is delivered again; the stale MERGE gets to run (if it has
	// not) once that request has staged its first chunk.
	loaded, goOn := make(chan struct{}), make(chan struct{})
	var once sync.Once
	setHook(s, func(point string) error {
		if point == "loaded" {
			once.Do(func() {
				close(loaded)
				<-goOn
			})
		}
		return nil
	})
	r3 := run(ctx)
	select {
	case <-loaded:
	case got := <-r3:
		t.Fatalf("redelivered date ended %v, %v before staging a chunk", got.out, got.err)
	}
	if !released {
		release()
		testenv.WaitFor(t, time.Minute, "the stale publish to end", func() bool {
			j, err := r.bq.Client.JobFromID(ctx, stale)
			if err != nil {
				return false
			}
			st, err := j.Status(ctx)
			return err == nil && st.Done()
		})
	}
	close(goOn)
	if got := <-r3; got.err != nil || got.out != AlreadyFinished {
		t.Fatalf("redelivered date: %v, %v; want already finished", got.out, got.err)
	}
	if !r.entry(day).IsFinished {
		t.Fatal("the date is not recorded finished")
	}
	dest, err := r.wh.CountDay(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if dest.Rows != 100 {
		t.Fatalf("the finished day holds %d of its 100 rows: a publish that outlived its requester landed after the finish", dest.Rows)
	}
	if !strings.Contains(logs.String(), `"message":"stale publish job ran"`) || !strings.Contains(logs.String(), stale) {
		t.Errorf("no log line names the stale publish %s:\n%s", stale, logs.String())
	}
}
