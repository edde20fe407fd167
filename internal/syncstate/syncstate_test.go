package syncstate_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// Many writers append at once (streaming inserts, no DML queue); the view
// shows one row per date: the finished one if any, else the newest.
func TestConcurrentWritersAndView(t *testing.T) {
	t.Parallel()
	b := testenv.BigQuery(t)
	st := syncstate.New(b.Client, b.Project, b.Dataset)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const writers = 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			day := civil.Date{Year: 2025, Month: 1, Day: 1 + w%10}
			e := syncstate.Entry{Table: "t", Date: day, State: syncstate.StateInProgress, LastMaxID: int64(w), SyncedAt: base.Add(time.Duration(w) * time.Second), Writer: "w"}
			if w == 3 {
				e.State, e.IsFinished = syncstate.StateFinished, true // finished early, then stale checkpoints follow
			}
			errs <- st.Append(ctx, e)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Latest(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("view shows %d dates, want 10", len(got))
	}
	// Day 4 had writers 3 (finished), 13, 23, 33, 43: finished wins.
	if e := got[civil.Date{Year: 2025, Month: 1, Day: 4}]; !e.IsFinished || e.LastMaxID != 3 {
		t.Fatalf("day 4 = %+v, want the finished entry", e)
	}
	// Day 5 had writers 4, 14, 24, 34, 44: the newest wins.
	if e := got[civil.Date{Year: 2025, Month: 1, Day: 5}]; e.IsFinished || e.LastMaxID != 44 {
		t.Fatalf("day 5 = %+v, want writer 44's entry", e)
	}
	n, err := st.CountState(ctx, "t", civil.Date{Year: 2025, Month: 1, Day: 5}, syncstate.StateInProgress)
	if err != nil || n != 5 {
		t.Fatalf("CountState = %d, %v; want 5", n, err)
	}
}
