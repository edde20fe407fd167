package loader

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// published records what `planner resync` publishes; Pub/Sub itself is not
// what these tests look at (the planner's own tests use pstest).
type published struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (p *published) Publish(_ context.Context, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, data)
	return nil
}

// resyncDay runs `planner resync` for day on r's table.
func (r *rig) resyncDay(s *Syncer, day time.Time) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := &planner.Planner{State: r.state, Pub: &published{}, Table: s.Table, Staging: s.Warehouse}
	d := civil.DateOf(day)
	got, err := p.Resync(ctx, d, d, "rows fixed at the source", "operator")
	if err != nil || len(got) != 1 || !got[0].Done {
		r.t.Fatalf("resync %s = %+v, %v", d, got, err)
	}
}

// `planner resync` starts a date over: rows deleted at the source on
// purpose (the runbook's fix for "were rows deleted in PostgreSQL?") leave
// the day once it is re-synced. The staging table the failed date kept
// still holds the deleted row; were it kept, its loads would be adopted
// through 409 and the deleted row published again, failing the date for
// good.
func TestResyncStartsTheDateOver(t *testing.T) {
	t.Parallel()
	r, _ := newFidelityRig(t, bqfidelity.Options{JobLatency: 50 * time.Millisecond})
	day := time.Date(2024, 11, 12, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 100, false)
	s := r.open(1000)
	setNoDirect(s, true)
	r.crash(s, day, "published", 1) // the day is in BigQuery, staging kept
	r.exec(`DELETE FROM activity_logs WHERE id = 50`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	for range 10 {
		var out Outcome
		if out, err = s.Sync(ctx, day, time.Now().Add(time.Hour)); out != Continue {
			break
		}
	}
	if !errors.Is(err, ErrMismatch) || r.entry(day).State != syncstate.StateFailed {
		t.Fatalf("sync after a deleted row: %v, state %s; want the date failed", err, r.entry(day).State)
	}

	r.resyncDay(s, day)
	for range 10 {
		var out Outcome
		out, err = s.Sync(ctx, day, time.Now().Add(time.Hour))
		if err != nil || out != Continue {
			if err == nil && out != Finished {
				t.Fatalf("outcome %v after the resync, want finished", out)
			}
			break
		}
	}
	if err != nil {
		t.Fatalf("sync after the resync: %v", err)
	}
	if n := r.check(day); n != 99 {
		t.Fatalf("source rows = %d, want 99", n)
	}
}

// A resync resets the count of full re-syncs (docs: quarantine and
// mismatches count since the last re-opening): a date rebuilt three times
// before, then re-opened by an operator, is rebuilt again when staging
// turns out incomplete, not failed.
func TestResyncResetsTheMismatchCount(t *testing.T) {
	t.Parallel()
	r, _ := newFidelityRig(t, bqfidelity.Options{JobLatency: 50 * time.Millisecond})
	day := time.Date(2024, 11, 13, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 200, false)
	s := r.open(30)
	setNoDirect(s, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range maxResyncs {
		if err := r.state.Append(ctx, r.state.Stamp(syncstate.Entry{Table: s.Table, Date: civil.DateOf(day),
			State: syncstate.StateMismatch, Writer: "earlier"})); err != nil {
			t.Fatal(err)
		}
	}
	r.resyncDay(s, day)
	// A row commits late, below the staged position, as the publish
	// starts: staging turns out incomplete, and the date is rebuilt.
	var once sync.Once
	setHook(s, func(point string) error {
		if point == "publish" {
			once.Do(func() {
				r.exec(`INSERT INTO activity_logs (id, user_id, action, created_at) VALUES (5000, 1, 'late', '2024-11-13 00:00:01+00')`)
			})
		}
		return nil
	})
	if got := r.syncAll(s, day); got != Finished {
		t.Fatalf("outcome = %v", got)
	}
	if n := r.check(day); n != 201 {
		t.Fatalf("source rows = %d, want 201", n)
	}
}
