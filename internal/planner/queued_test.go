package planner

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A date whose message is still waiting in the subscription (newest entry
// "planned", an hour old, past the 15 min in-flight window) is not
// published again while Queued lasts; a date a loader checkpointed an hour
// ago and then left is.
func TestQueuedDatesAreNotRepublished(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.planner.Now()
	f.planner.Queued = 24 * time.Hour
	f.record(t, "planned", false, now.Add(-time.Hour), 1, 2)
	f.record(t, "in_progress", false, now.Add(-time.Hour), 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plan, err := f.planner.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range plan {
		got = append(got, p.Date.String())
	}
	want := []string{"2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}
