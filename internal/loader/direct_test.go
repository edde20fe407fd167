package loader

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/pgcoord"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/testenv"
)

// A closed day read from its start is published by one load job of its
// files as soon as its last chunk is encoded, without waiting for the
// staging loads that BigQuery's 5 writes per table per 10 s hold back:
// the day arrives whole, once, finished, with no MERGE, before its last
// chunk was staged; its staging, which the loader leaves while the
// table's metadata window is full, goes at the planner's next run. A lost
// answer to that load is adopted through 409. When the table's writes leave no room (another
// process took every write token of the window), the same kind of day is
// published from staging by MERGE instead.
func TestPublishByLoad(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: time.Second})
	first := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	const perDay, chunk = 250, 60 // five chunks: the fifth load waits for the pacer
	seedDays(t, r.pool, first, 3, perDay, true)
	r.dropJSON()
	s := r.open(chunk)
	var byLoad atomic.Int32
	setHook(s, func(point string) error {
		if point == "published_by_load" {
			byLoad.Add(1)
		}
		return nil
	})
	merges := func() int { return proxy.Stats().DMLRun["MERGE"] }

	before := merges()
	if got := r.syncAll(s, first); got != Finished {
		t.Fatalf("outcome %v, want finished", got)
	}
	r.check(first)
	if byLoad.Load() != 1 || merges() != before {
		t.Fatalf("published by load %d times, %d MERGE statements; want once by load and no MERGE", byLoad.Load(), merges()-before)
	}
	if e := r.entry(first); !e.IsFinished || e.SourceRows != perDay || e.BigQueryRows != perDay {
		t.Fatalf("sync_control = %+v", e)
	}
	if n := rowsLoaded(s); n >= perDay {
		t.Fatalf("%d rows staged: the publish waited for the whole staging", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The loader's drop of staging meets the table's metadata window (its
	// creation and loads) and leaves it; a planner run drops it once the
	// window has room (a run before that leaves it for the next).
	p := &planner.Planner{State: r.state, Table: s.Table, Staging: s.Warehouse}
	testenv.WaitFor(t, time.Minute, "a planner run to drop the finished day's staging", func() bool {
		dropped, _, err := p.DropFinishedStaging(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return dropped == 1
	})
	if _, _, err := r.wh.StagingRows(ctx, first); !errors.Is(err, bq.ErrStagingGone) {
		t.Fatalf("staging of the finished day after the planner's run: %v, want it dropped", err)
	}

	// The publishing load's answer is lost once: the re-send meets 409
	// and adopts the job, and the day arrives once.
	proxy.Inject(bqfidelity.Fault{Kind: "load", Table: "activity_logs$", Count: 1, AfterWork: true}) // the destination's decorator, not staging
	second := first.AddDate(0, 0, 1)
	if got := r.syncAll(s, second); got != Finished {
		t.Fatalf("outcome %v, want finished", got)
	}
	r.check(second)
	if st := proxy.Stats(); byLoad.Load() != 2 || st.FaultsFired != 1 || st.Duplicate409 < 1 {
		t.Fatalf("lost answer to the publishing load: published by load %d times in all, %d faults fired, %d 409s; want 2, 1 and at least 1",
			byLoad.Load(), st.FaultsFired, st.Duplicate409)
	}

	// Once the tokens of the publishes above have gone, another process
	// takes every write token of the destination.
	other, err := pgsource.Open(ctx, pgsource.Config{DSN: r.dsn}, pgsource.TableSpec{Table: "activity_logs", IDColumn: "id", TimestampColumn: "created_at"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	time.Sleep(pgcoord.TableWriteWindow)
	for i := range pgcoord.TableWrites + 1 {
		ran, err := other.Coord().PublishAlone(ctx, r.wh.DestRef(), 0, func(_ context.Context, started func()) error { started(); return nil })
		if err != nil || ran != (i < pgcoord.TableWrites) {
			t.Fatalf("publish by itself %d of another process: ran %v, %v", i+1, ran, err)
		}
	}
	third := first.AddDate(0, 0, 2)
	before = merges()
	if got := r.syncAll(s, third); got != Finished {
		t.Fatalf("outcome %v, want finished", got)
	}
	r.check(third)
	if byLoad.Load() != 2 || merges() != before+1 {
		t.Fatalf("with no write token free: published by load %d times in all, %d MERGE statements; want the day by one MERGE",
			byLoad.Load(), merges()-before)
	}
}

// Once BigQuery refuses a publish by load for the destination's load-job
// quota (1,500 a table a day, here 1), the day is published from staging
// and so are the next ones, without another refused load.
func TestPublishByLoadStopsAtTheLoadQuota(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{LoadJobsPerTablePerDay: 1})
	first := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, first, 3, 40, false)
	r.dropJSON()
	s := r.open(100) // one chunk a day: one load per staging table
	var byLoad atomic.Int32
	setHook(s, func(point string) error {
		if point == "published_by_load" {
			byLoad.Add(1)
		}
		return nil
	})
	for i := range 3 {
		day := first.AddDate(0, 0, i)
		if got := r.syncAll(s, day); got != Finished {
			t.Fatalf("%s: outcome %v, want finished", day.Format(time.DateOnly), got)
		}
		r.check(day)
	}
	refused := proxy.Stats().RateLimited[bqfidelity.LimitLoadDay]
	if byLoad.Load() != 1 || refused != 1 {
		t.Fatalf("%d days published by load, %d loads refused for quota; want 1 and 1", byLoad.Load(), refused)
	}
}
