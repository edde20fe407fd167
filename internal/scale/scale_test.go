package scale

import (
	"context"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/testenv"
)

// A short run of each mode, part of `make test`; `make scale` is the
// full-size run. Wall-clock figures are reported, not asserted.
func short(t *testing.T, mode string, dates, loaders int, timeScale float64) *Report {
	t.Helper()
	dsn, _ := testenv.PG(t)
	const latency = 200 * time.Millisecond
	b, proxy := testenv.Fidelity(t, bqfidelity.Options{JobLatency: latency})
	rep, err := Run(context.Background(), Options{
		Mode: mode, Dates: dates, Loaders: loaders, Outstanding: 2, RowsPerDate: 200, ChunkSize: 100,
		PGDSN: dsn, BQ: b.Config(), Proxy: proxy, JobLatency: latency,
		TimeScale: timeScale, MaxDatesPerRun: 500, Timeout: 5 * time.Minute, Log: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Note != "" {
		t.Log(rep.Note)
	}
	t.Log(rep.Line())
	return rep
}

// Pull with flow control: a backlog one and a half times the loaders' capacity
// waits in the subscription; every date is synced exactly once, nothing
// is dead-lettered, and a date is delivered about once.
func TestPullBackfillWaitsInTheQueue(t *testing.T) {
	t.Parallel()
	rep := short(t, Pull, 12, 4, 0)
	if rep.DeadLettered != 0 || rep.Failed != 0 || rep.Lost != 0 || rep.Duplicated != 0 || rep.Unfinished != 0 {
		t.Errorf("dead_lettered=%d failed=%d lost=%d duplicated=%d unfinished=%d, want all 0",
			rep.DeadLettered, rep.Failed, rep.Lost, rep.Duplicated, rep.Unfinished)
	}
	if rep.Stats.TransactionConflicts != 0 {
		t.Errorf("publish conflicts = %d, want 0", rep.Stats.TransactionConflicts)
	}
	if p := rep.DeliveriesPerDate(); p > 1.5 {
		t.Errorf("deliveries per date = %.2f, want <= 1.5", p)
	}
}

// The old design: push to Cloud Run with one request per instance, the
// planner publishing up to 500 dates at once to fewer instances than
// dates. Requests that find every instance busy wait, get 429 and burn
// delivery attempts until healthy dates are dead-lettered. Times are
// scaled by 0.01 (10 s -> 100 ms, a 25 s retry window for 10 attempts);
// twelve waves of dates on two instances outlast it.
func TestPushBackfillDeadLettersHealthyDates(t *testing.T) {
	t.Parallel()
	rep := short(t, Push, 24, 2, 0.01)
	if rep.DeadLettered == 0 {
		t.Fatalf("no date was dead-lettered (%s): the old push design should dead-letter a backlog larger than its instances", rep.Line())
	}
	if rep.Failed != 0 || rep.Duplicated != 0 {
		t.Errorf("failed=%d duplicated=%d: the dates that were worked must still be exactly once", rep.Failed, rep.Duplicated)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
