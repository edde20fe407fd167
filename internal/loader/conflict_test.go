package loader

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/retry"
)

// Publishes of one day that overlap conflict on its partition ("BigQuery
// tries to rerun failed statements up to three times",
// https://cloud.google.com/bigquery/docs/data-manipulation-language#dml_statement_conflicts).
// Five at once (the layer lets five run, where BigQuery runs two and
// queues the rest, and reruns a statement once instead of three times, so
// that statements surely run out of reruns): those that do fail with
// "Could not serialize access … due to concurrent update", and pgbq's
// retry takes that for transient and publishes again under a new job id. Every publish ends published; the day holds its rows
// once.
func TestConflictingPublishesAreRetried(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: 2 * time.Second, MutatingDMLRunning: 5, DMLConflictRetries: 1})
	day := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 30, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	first := r.open(1000)
	gen, err := first.Warehouse.EnsureStaging(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if err := stageFirstRows(ctx, t, first, day, gen, 30); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		s := first
		if i > 0 {
			s = r.newSyncer(1000, "w")
		}
		wg.Go(func() {
			errs[i] = retry.Do(ctx, func(ctx context.Context, _ int) error {
				return s.Warehouse.PublishDays(ctx, []time.Time{day}, nil)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("publish %d: %v", i, err)
		}
	}
	st := proxy.Stats()
	if st.JobsFailed["invalidQuery"] < 1 || st.DMLConflicts < 2 {
		t.Fatalf("failed %v, conflicts %d: no publish exhausted its reruns, the retry path was not taken", st.JobsFailed, st.DMLConflicts)
	}
	got, err := first.Warehouse.CountDay(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != 30 || got.DistinctIDs != 30 {
		t.Fatalf("day holds %d rows, %d ids; want 30 once each", got.Rows, got.DistinctIDs)
	}
}
