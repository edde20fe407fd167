package planner

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"
)

// The summary the monitoring reads: 2024-06-01..06 (now is 06-06 12:00),
// two finished, one failed, one planned a minute ago (in flight).
func TestSummarize(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.planner.Now()
	f.record(t, "finished", true, now.Add(-2*time.Hour), 1, 3)
	f.record(t, "failed", false, now.Add(-3*time.Hour), 2)
	f.record(t, "planned", false, now.Add(-time.Minute), 4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := f.planner.Summarize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{Dates: 6, Finished: 2, Failed: 1, InFlight: 1,
		OldestUnfinished: civil.Date{Year: 2024, Month: 6, Day: 2}, NewestFinished: civil.Date{Year: 2024, Month: 6, Day: 3},
		FreshnessLag: 2*24*time.Hour + 12*time.Hour}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}
