package loader

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// syncOnce runs one Sync of day with an hour of budget.
func (r *rig) syncOnce(s *Syncer, day time.Time) (Outcome, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return s.Sync(ctx, day, time.Now().Add(time.Hour))
}

// Rows deleted in PostgreSQL after BigQuery got them: once the day has
// closed, BigQuery holds more rows than the source, and the date fails
// for good (ErrMismatch) with a detail a person can act on, instead of
// being re-synced or finished.
func TestMoreRowsInBigQueryFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, 40)
	day := time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 100, false)
	s := r.open(40)
	now := day.Add(12 * time.Hour)
	s.Now = func() time.Time { return now }
	if got := r.syncAll(s, day); got != Published {
		t.Fatalf("outcome while the day is open = %v, want published", got)
	}
	r.exec(`DELETE FROM activity_logs WHERE id <= 5`)
	now = day.Add(26 * time.Hour)
	out, err := r.syncOnce(s, day)
	if !errors.Is(err, ErrMismatch) || retry.Transient(err) {
		t.Fatalf("sync after the delete = %v, %v; want a permanent ErrMismatch", out, err)
	}
	e := r.entry(day)
	// (A failed row keeps no counts in source_rows/bigquery_rows; the
	// detail carries them.)
	if e.State != syncstate.StateFailed || e.IsFinished ||
		!strings.Contains(e.Detail, "BigQuery has 100 rows for this day, the source 95: were rows deleted in PostgreSQL?") {
		t.Fatalf("sync_control = %+v, want failed, BigQuery 100 rows, the source 95", e)
	}
}

// steppingClock reads start, then each reading is step after the one
// before: time passes between the moments a Sync asks for it.
func steppingClock(start time.Time, step time.Duration) func() time.Time {
	n := -1
	return func() time.Time {
		n++
		return start.Add(time.Duration(n) * step)
	}
}

// A day that closes while it is being synced: the last chunk stopped at
// the open day's horizon (rows of the last hour wait), but by the count
// the day is closed and the source has rows BigQuery lacks. The date
// continues rather than finishing short, and the next request stages the
// rest and finishes it.
func TestRowsAfterLastChunkContinue(t *testing.T) {
	t.Parallel()
	r := newRig(t, 40)
	day := time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 100, false) // the last two rows after 23:30
	s := r.open(40)
	// 00:30 the next morning (horizon 23:30), then 40 minutes per reading:
	// past the hour of grace when the counts are compared.
	s.Now = steppingClock(day.Add(24*time.Hour+30*time.Minute), 40*time.Minute)
	out, err := r.syncOnce(s, day)
	if err != nil || out != Continue {
		t.Fatalf("first sync = %v, %v; want continue", out, err)
	}
	if e := r.entry(day); e.IsFinished || e.State != syncstate.StateInProgress || e.RowsStaged != 98 {
		t.Fatalf("sync_control after the first sync = %+v, want in progress with 98 rows staged", e)
	}
	if out, err := r.syncOnce(s, day); err != nil || out != Finished {
		t.Fatalf("second sync = %v, %v; want finished", out, err)
	}
	if n := r.check(day); n != 100 {
		t.Fatalf("source rows = %d, want 100", n)
	}
}

// An id column that is not unique makes staging (which counts distinct
// ids) look short of the source every time: the date is rebuilt from its
// start three times, then fails for good, saying why.
func TestThreeResyncsThenFail(t *testing.T) {
	t.Parallel()
	r := newRig(t, 25)
	r.exec(`CREATE TABLE dup_events (id bigint NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON dup_events (created_at, id);
INSERT INTO dup_events SELECT g, TIMESTAMPTZ '2024-09-12 01:00:00+00' + g * interval '1 minute' FROM generate_series(1, 60) g;
INSERT INTO dup_events SELECT g, TIMESTAMPTZ '2024-09-12 12:00:00+00' + g * interval '1 minute' FROM generate_series(1, 10) g`)
	s := r.openSpec(pgsource.TableSpec{Table: "dup_events", IDColumn: "id", TimestampColumn: "created_at"}, "dup_events", 25)
	day := time.Date(2024, 9, 12, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		if out, err := r.syncOnce(s, day); err != nil || out != Continue {
			t.Fatalf("sync %d = %v, %v; want continue (a re-sync from the start)", i, out, err)
		}
	}
	out, err := r.syncOnce(s, day)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("sync 4 = %v, %v; want ErrMismatch", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, _, err := r.state.Date(ctx, "dup_events", civil.DateOf(day))
	if err != nil {
		t.Fatal(err)
	}
	if e.State != syncstate.StateFailed || !strings.Contains(e.Detail, "3 full re-syncs did not fix it") {
		t.Fatalf("sync_control = %+v, want failed after 3 re-syncs", e)
	}
	if n, err := r.state.CountState(ctx, "dup_events", civil.DateOf(day), syncstate.StateMismatch); err != nil || n != 3 {
		t.Fatalf("mismatch entries = %d, %v; want 3", n, err)
	}
}
