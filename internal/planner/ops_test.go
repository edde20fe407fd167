package planner

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// A date that failed QuarantineAfter times is quarantined (recorded,
// logged at ERROR), not planned again, until resync releases it.
func TestQuarantineAndResync(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.planner.Now()
	f.planner.QuarantineAfter = 3
	f.record(t, syncstate.StateFinished, true, now.Add(-2*time.Hour), 1, 3, 4, 5)
	// June 2 failed three times, long ago; a failure before a re-opening
	// does not count.
	f.record(t, syncstate.StateFailed, false, now.Add(-10*time.Hour), 2)
	f.record(t, syncstate.StateReopened, false, now.Add(-9*time.Hour), 2)
	for _, h := range []int{8, 7, 6} {
		f.record(t, syncstate.StateFailed, false, now.Add(-time.Duration(h)*time.Hour), 2)
	}
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx = logging.With(ctx, logging.New(&logs, "info"))
	plan, err := f.planner.Plan(ctx)
	if err != nil || len(plan) == 0 || plan[0].Reason != ReasonQuarantine {
		t.Fatalf("dry-run plan = %+v, %v; want June 2 to be quarantined", plan, err)
	}
	if _, err := f.planner.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"2024-06-06"}, f.published(t)); diff != "" {
		t.Fatalf("published (-want +got):\n%s", diff)
	}
	june2 := civil.Date{Year: 2024, Month: 6, Day: 2}
	e, _, err := f.state.Date(ctx, "events", june2)
	if err != nil || e.State != syncstate.StateQuarantined || !strings.Contains(e.Detail, "failed 3 times") {
		t.Fatalf("June 2 = %+v, %v; want quarantined after 3 failures", e, err)
	}
	for _, want := range []string{`"severity":"ERROR"`, `"message":"date quarantined"`, `"sync_date":"2024-06-02"`} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %s:\n%s", want, logs.String())
		}
	}
	// A later run leaves it alone, however old the entry gets.
	f.planner.Now = func() time.Time { return now.Add(48 * time.Hour) }
	plan, err = f.planner.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range plan {
		if d.Date == june2 {
			t.Fatalf("quarantined date planned again: %+v", d)
		}
	}
	f.planner.Now = func() time.Time { return now }

	// resync releases it: re-opened with the reason, published, planned.
	got, err := f.planner.Resync(ctx, june2, june2.AddDays(1), "source fixed", "operator")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Done || got[0].Prev != syncstate.StateQuarantined || !got[1].Done || got[1].Prev != syncstate.StateFinished {
		t.Fatalf("resync = %+v", got)
	}
	if diff := cmp.Diff([]string{"2024-06-06", "2024-06-02", "2024-06-03"}, f.published(t)); diff != "" {
		t.Fatalf("published (-want +got):\n%s", diff)
	}
	n, err := f.state.CountState(ctx, "events", june2, syncstate.StateReopened)
	if err != nil || n != 2 {
		t.Fatalf("reopened entries of June 2: %d, %v; want 2", n, err)
	}
	counts, err := f.state.FailureCounts(ctx, "events")
	if err != nil || counts[june2] != 0 {
		t.Fatalf("failures of June 2 after resync: %v, %v; want none", counts, err)
	}
	if e, _, err := f.state.Date(ctx, "events", june2); err != nil || e.State != syncstate.StatePlanned {
		t.Fatalf("June 2 after resync = %+v, %v; want planned", e, err)
	}
}

// A paused table is not planned; after the resume, dates whose messages
// were published before it (and dropped by loaders) are published again.
func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.planner.Now()
	f.planner.Queued = 24 * time.Hour
	f.record(t, syncstate.StateFinished, true, now.Add(-2*time.Hour), 1, 2, 3, 4)
	f.record(t, syncstate.StatePlanned, false, now.Add(-time.Hour), 5)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	set := func(paused bool, at time.Time) {
		t.Helper()
		p := *f.planner
		p.State = f.state.WithClock(func() time.Time { return at })
		if err := p.SetPaused(ctx, paused, "test", "operator"); err != nil {
			t.Fatal(err)
		}
	}
	set(true, now.Add(-50*time.Minute))
	plan, err := f.planner.Run(ctx)
	if err != nil || len(plan) != 0 || len(f.published(t)) != 0 {
		t.Fatalf("paused table planned %+v (published %v), %v", plan, f.published(t), err)
	}
	var out bytes.Buffer
	ts, err := f.planner.Status(ctx, &out, StatusQuery{State: "paused"})
	if err != nil || !ts.Paused || !strings.Contains(out.String(), "paused=true") {
		t.Fatalf("status --state paused: %+v, %v\n%s", ts, err, out.String())
	}
	set(false, now.Add(-10*time.Minute))
	if _, err := f.planner.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// June 5 was planned before the resume: queued no longer.
	if diff := cmp.Diff([]string{"2024-06-05", "2024-06-06"}, f.published(t)); diff != "" {
		t.Fatalf("published after resume (-want +got):\n%s", diff)
	}
	out.Reset()
	if ts, err := f.planner.Status(ctx, &out, StatusQuery{State: "paused"}); err != nil || ts.Paused || out.Len() != 0 {
		t.Fatalf("status --state paused after resume: %+v, %v, %q", ts, err, out.String())
	}
}
