package planner

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/pubsubx"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

type fixture struct {
	planner *Planner
	state   *syncstate.Store
	ps      *testenv.PubSub
	bq      testenv.BQ
}

// newFixture: a source table with rows on 2024-06-01..05, sync_control in
// the emulator, pstest for the topic; "now" is 2024-06-06 12:00 UTC.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool,
		`CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`,
		`INSERT INTO events SELECT g, TIMESTAMPTZ '2024-06-01 00:00:00+00' + (g - 1) * interval '1 hour' FROM generate_series(1, 120) g`)
	b := testenv.BigQuery(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: dsn}, pgsource.TableSpec{Table: "events", IDColumn: "id", TimestampColumn: "created_at"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	now := testenv.ClockAt(time.Date(2024, 6, 6, 12, 0, 0, 0, time.UTC))
	st := syncstate.New(b.Client, b.Project, b.Dataset).WithClock(now)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ps := testenv.NewPubSub(t)
	pub := pubsubx.NewPublisher(ps.Client, ps.Topic)
	t.Cleanup(pub.Stop)
	return &fixture{
		planner: &Planner{Source: src, State: st, Pub: pub, Table: "events", InFlight: 15 * time.Minute, MaxDates: 100,
			Now: now, Staging: bq.NewStagingTables(b.Client, b.Config(), "events")},
		state: st, ps: ps, bq: b,
	}
}

func (f *fixture) record(t *testing.T, state syncstate.State, finished bool, at time.Time, days ...int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var es []syncstate.Entry
	for _, d := range days {
		es = append(es, syncstate.Entry{Table: "events", Date: civil.Date{Year: 2024, Month: 6, Day: d}, State: state, IsFinished: finished, SyncedAt: at})
	}
	if err := f.state.Append(ctx, es...); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) published(t *testing.T) []string {
	t.Helper()
	var dates []string
	for _, data := range f.ps.Published() {
		var m struct{ Table, Date string }
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatal(err)
		}
		if m.Table != "events" {
			t.Fatalf("message for table %q", m.Table)
		}
		dates = append(dates, m.Date)
	}
	return dates
}

func TestGapIsPublishedFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	long := time.Date(2024, 6, 6, 1, 0, 0, 0, time.UTC)
	f.record(t, syncstate.StateFinished, true, long, 1, 2, 4, 5)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plan, err := f.planner.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2024-06-03", "2024-06-06"}
	if diff := cmp.Diff(want, f.published(t)); diff != "" {
		t.Fatalf("published (-want +got):\n%s", diff)
	}
	if plan[0].Reason != "gap" || plan[1].Reason != "today" {
		t.Fatalf("reasons = %q, %q", plan[0].Reason, plan[1].Reason)
	}
	// Running again at once publishes nothing: both dates are in flight.
	if _, err := f.planner.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.published(t); len(got) != 2 {
		t.Fatalf("second run published again: %v", got)
	}
}

func TestInFlightSkippedAndCap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.planner.Now()
	f.record(t, syncstate.StateInProgress, false, now.Add(-time.Minute), 2) // fresh: in flight
	f.record(t, syncstate.StateInProgress, false, now.Add(-time.Hour), 3)   // stale: a loader died
	f.record(t, syncstate.StateFinished, true, now.Add(-30*time.Second), 4) // finished
	f.planner.MaxDates = 3
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plan, err := f.planner.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range plan {
		got = append(got, p.Date.String()+"/"+p.Reason)
	}
	want := []string{"2024-06-01/gap", "2024-06-03/unfinished", "2024-06-05/new"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("plan (-want +got):\n%s", diff)
	}
}

func TestStartDateFromConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.planner.Start = time.Date(2024, 6, 4, 0, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plan, err := f.planner.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 3 || plan[0].Date.String() != "2024-06-04" {
		t.Fatalf("plan = %v, want 2024-06-04..06", plan)
	}
}

// Two planners at once publish each date at least once and fail nothing;
// duplicates are the loaders' to absorb.
func TestTwoPlannersAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	second := *f.planner
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*Planner{f.planner, &second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.Run(ctx)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("errors: %v", errs)
	}
	seen := map[string]bool{}
	for _, d := range f.published(t) {
		seen[d] = true
	}
	for d := 1; d <= 6; d++ {
		if !seen[civil.Date{Year: 2024, Month: 6, Day: d}.String()] {
			t.Fatalf("date 2024-06-%02d not published: %v", d, seen)
		}
	}
}
