package loader

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/planner"
)

// A date finished while its staging table's metadata window is full — its
// creation and 4 loads within 10 s leave no room for the tables.delete —
// completes without waiting for the window to clear: the loader tries the
// drop within its budget, is refused, and leaves the table; the planner's
// next run drops it, and a run refused again leaves it for the run after.
// (Before, the loader's drop was retried with back-off until the window
// cleared, seconds after the date was finished.)
func TestFinishedDateLeavesStagingToThePlanner(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: 50 * time.Millisecond})
	day := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 120, false)
	s := r.open(40)
	setNoDirect(s, true) // the staging path: loads and MERGE
	staging := s.Warehouse.Staging(day)
	refused := func() int { return proxy.Stats().RateLimited[bqfidelity.LimitTableMetadata] }
	before := refused()

	// Once the finish is due, staging's window is full until the loader
	// returns — or, for a loader that waits the rate out, until its drop
	// was refused 8 times: within bq.CleanupBudget the Go client's
	// back-off (pauses drawn up to 1 s, 2 s, 4 s …) makes 8 attempts
	// practically never, a wait of about a minute makes them.
	var (
		once    sync.Once
		release func()
	)
	returned := make(chan struct{})
	watched := make(chan struct{})
	setHook(s, func(point string) error {
		if point != "finish" {
			return nil
		}
		once.Do(func() {
			release = proxy.FillMetadataWindow(staging)
			go func() {
				defer close(watched)
				defer release()
				for refused()-before < 8 {
					select {
					case <-returned:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
		})
		return nil
	})
	out := r.syncAll(s, day)
	close(returned)
	<-watched
	if out != Finished {
		t.Fatalf("outcome %v, want finished", out)
	}
	r.check(day)
	if e := r.entry(day); !e.IsFinished {
		t.Fatalf("sync_control = %+v, want finished", e)
	}
	if n := refused() - before; n < 1 {
		t.Fatalf("%d metadata updates refused, want the drop of staging refused", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, _, err := r.wh.StagingRows(ctx, day); err != nil {
		t.Fatalf("staging of the finished day: %v; want it left to the planner, not dropped by a loader that waited out the rate (%d refusals)",
			err, refused()-before)
	}

	p := &planner.Planner{State: r.state, Table: s.Table, Staging: s.Warehouse}
	// The planner's drop is refused too while the window is full: the
	// table is left for its next run.
	release = proxy.FillMetadataWindow(staging)
	dropped, left, err := p.DropFinishedStaging(ctx)
	release()
	if err != nil || dropped != 0 || left != 1 {
		t.Fatalf("planner run with staging's window full: dropped %d, left %d, %v; want 0, 1, nil", dropped, left, err)
	}
	if _, _, err := r.wh.StagingRows(ctx, day); err != nil {
		t.Fatalf("staging after a refused drop: %v, want it kept", err)
	}
	dropped, left, err = p.DropFinishedStaging(ctx)
	if err != nil || dropped != 1 || left != 0 {
		t.Fatalf("planner run: dropped %d, left %d, %v; want 1, 0, nil", dropped, left, err)
	}
	if _, _, err := r.wh.StagingRows(ctx, day); !errors.Is(err, bq.ErrStagingGone) {
		t.Fatalf("staging of the finished day after the planner's run: %v, want it dropped", err)
	}
}
