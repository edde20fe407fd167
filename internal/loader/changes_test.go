package loader

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/testenv"
)

// updatedAtDDL gives activity_logs an updated-at column that a trigger
// keeps, and the index the planner reads changes through.
const updatedAtDDL = `
ALTER TABLE activity_logs ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX activity_logs_updated_at ON activity_logs (updated_at);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER activity_logs_touch BEFORE UPDATE ON activity_logs FOR EACH ROW EXECUTE FUNCTION touch();`

// changesPlanner is the planner of r's table following its changes
// through updated_at, its day pinned at now.
func (r *rig) changesPlanner(s *Syncer, first time.Time, now time.Time, sweepDays int) *planner.Planner {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch, err := s.Source.Changes(ctx, "updated_at")
	if err != nil {
		r.t.Fatal(err)
	}
	return &planner.Planner{Source: s.Source, Dest: s.Warehouse, State: r.state, Pub: &published{}, Staging: s.Warehouse,
		Table: s.Table, Start: first, Now: testenv.ClockAt(now), InFlight: time.Minute,
		Changes: &planner.Changes{Column: "updated_at", Finder: ch, Log: r.state, Grace: 10 * time.Minute, Fresh: 30 * time.Minute, SweepDays: sweepDays,
			SourceVersions: func(ctx context.Context, from, to time.Time) (map[civil.Date]int64, bool, error) {
				sums, err := ch.DayVersions(ctx, from, to)
				return sums, err == nil, err
			},
			DestVersions: func(ctx context.Context, from, to time.Time) (map[civil.Date]int64, bool, error) {
				return s.Warehouse.DayVersions(ctx, "updated_at", pgsource.VersionModulus, from, to)
			}}}
}

// runPlanned runs the planner once and syncs every date it plans,
// returning those dates with their reasons.
func (r *rig) runPlanned(s *Syncer, p *planner.Planner) []string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plan, err := p.Run(ctx)
	if err != nil {
		r.t.Fatalf("planner run: %v", err)
	}
	var got []string
	for _, d := range plan {
		got = append(got, d.Date.String()+" "+d.Reason)
		if out := r.syncAll(s, d.Date.In(time.UTC)); out != Finished && out != AlreadyFinished {
			r.t.Fatalf("sync %s: %v", d.Date, out)
		}
	}
	sort.Strings(got)
	return got
}

// bqValue reads one value of one row of the destination; "" when the row
// is not there.
func (r *rig) bqValue(col string, id int) string {
	r.t.Helper()
	rows := r.bqRows(fmt.Sprintf("SELECT CAST(%s AS STRING) FROM %s WHERE id = %d", col,
		bq.Ref(r.bq.Project, r.bq.Dataset, "activity_logs"), id))
	switch len(rows) {
	case 0:
		return ""
	case 1:
		return fmt.Sprint(rows[0][0])
	}
	r.t.Fatalf("id %d is in BigQuery %d times", id, len(rows))
	return ""
}

// An update, a delete and a row moved to another day each reach BigQuery
// through the planner and a loader: the update by the updated-at index
// (the sweep off, so only the watermark can find it), the delete and the
// day the moved row left by the fingerprint sweep.
func TestChangesReachBigQuery(t *testing.T) {
	t.Parallel()
	r, _ := newFidelityRig(t, bqfidelity.Options{JobLatency: 20 * time.Millisecond})
	day := time.Date(2024, 11, 10, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 3, 100, false)
	testenv.Exec(t, r.pool, updatedAtDDL)
	s := r.open(40)
	now := day.AddDate(0, 0, 3).Add(12 * time.Hour) // 2024-11-13: the three days are closed
	p := r.changesPlanner(s, day, now, 0)
	first := r.runPlanned(s, p)
	if len(first) != 4 { // three days and today
		t.Fatalf("first run planned %v", first)
	}
	// (The loaders' clock is the wall clock: the planner's today is a
	// closed day to them, finished on its first sync.)
	if again := r.runPlanned(s, p); len(again) != 0 {
		t.Fatalf("run without changes planned %v, want nothing", again)
	}

	// An update: found through updated_at, its day re-opened and replaced.
	r.exec(`UPDATE activity_logs SET action = 'changed' WHERE id = 50`)
	if got := r.runPlanned(s, p); fmt.Sprint(got) != "[2024-11-10 reopened]" {
		t.Fatalf("after an update the run planned %v", got)
	}
	if v := r.bqValue("action", 50); v != "changed" {
		t.Fatalf("updated row in BigQuery: action %q, want changed", v)
	}
	r.check(day)

	// A delete, and a row moved from the third day to the first: the
	// moved row's new day is found through updated_at, the delete and the
	// day it left by the sweep.
	r.exec(`DELETE FROM activity_logs WHERE id = 150`)
	r.exec(`UPDATE activity_logs SET created_at = TIMESTAMPTZ '2024-11-10 23:00:00+00' WHERE id = 250`)
	sweeping := r.changesPlanner(s, day, now, 31)
	// No grace from here on: the next run does not read this run's
	// changes again (see below).
	sweeping.Changes.Grace = 0
	got := r.runPlanned(s, sweeping)
	want := "[2024-11-10 reopened 2024-11-11 reopened 2024-11-12 reopened]"
	if fmt.Sprint(got) != want {
		t.Fatalf("after a delete and a move the run planned %v, want %v", got, want)
	}
	if v := r.bqValue("action", 150); v != "" {
		t.Fatalf("deleted row still in BigQuery")
	}
	if v := r.bqValue("CAST(created_at AS DATE)", 250); v != "2024-11-10" {
		t.Fatalf("moved row in BigQuery on %q, want 2024-11-10 only", v)
	}
	for d := range 3 {
		r.check(day.AddDate(0, 0, d))
	}

	// An update the watermark cannot see: stamped by a clock far behind
	// (the trigger off, as for an application that sets updated_at
	// itself). The keys are the same; the sweep's sums of updated_at
	// differ, and the day is replaced.
	r.exec(`ALTER TABLE activity_logs DISABLE TRIGGER activity_logs_touch`)
	r.exec(`UPDATE activity_logs SET action = 'lagging clock', updated_at = created_at + interval '1 hour' WHERE id = 60`)
	if got := r.runPlanned(s, sweeping); fmt.Sprint(got) != "[2024-11-10 reopened]" {
		t.Fatalf("after an update stamped in the past the run planned %v, want the day re-opened by the sweep", got)
	}
	if v := r.bqValue("action", 60); v != "lagging clock" {
		t.Fatalf("row updated with a lagging stamp in BigQuery: action %q", v)
	}
}
