package loader

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/logging"
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
	r := newRig(t)
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
	r := newRig(t)
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
	r := newRig(t)
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

// onMessage is a slog handler that calls f (once) when a record with
// message msg and chunk number chunk is logged, before passing it on.
type onMessage struct {
	slog.Handler
	msg   string
	chunk int64
	once  *sync.Once
	f     func()
}

func (h onMessage) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == h.msg {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "chunk" && a.Value.Int64() == h.chunk {
				h.once.Do(h.f)
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, rec)
}

func (h onMessage) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

func (h onMessage) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}

// A column dropped while a request is between two chunks of a date stops
// that request with a permanent error, before any row read after the drop
// (whose values would shift by one column in a file BigQuery matches by
// position) is loaded or published; the next request names the dropped
// column and says what to do.
func TestColumnDroppedBetweenChunks(t *testing.T) {
	t.Parallel()
	const chunk, rows = 50, 2000
	r := newRig(t)
	day := time.Date(2024, 9, 13, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, rows, false)
	s := r.open(chunk)
	// Reading must still be under way when the first chunk is staged: a
	// day published by load reads ahead of its loads to its end.
	setNoDirect(s, true)
	var dropErr error
	logger := slog.New(onMessage{Handler: slog.NewJSONHandler(io.Discard, nil), msg: "chunk staged", chunk: 1, once: new(sync.Once),
		f: func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, dropErr = r.pool.Exec(ctx, `ALTER TABLE activity_logs DROP COLUMN doc`)
		}})
	ctx, cancel := context.WithTimeout(logging.With(t.Context(), logger), 5*time.Minute)
	defer cancel()
	out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
	if dropErr != nil {
		t.Fatalf("drop column after chunk 1: %v", dropErr)
	}
	if err == nil || retry.Transient(err) {
		t.Fatalf("sync across the drop = %v, %v; want a permanent error", out, err)
	}
	t.Logf("sync across the drop: %v", err)
	st, err := r.wh.StagedState(ctx, day, 0)
	if err != nil {
		t.Fatal(err)
	}
	staged := st.DistinctIDs
	if staged < chunk || staged >= rows || staged%chunk != 0 {
		t.Fatalf("staging holds %d rows, want whole chunks of %d read before the drop", staged, chunk)
	}
	if got, err := r.wh.CountDay(ctx, day); err != nil || got.Rows != 0 {
		t.Fatalf("destination holds %d rows for the day (%v), want none published", got.Rows, err)
	}
	if e := r.entry(day); e.IsFinished {
		t.Fatalf("sync_control = %+v, want unfinished", e)
	}
	_, err = s.Sync(ctx, day, time.Now().Add(time.Hour))
	if !errors.Is(err, pgsource.ErrSchemaChanged) || !strings.Contains(err.Error(), `column "doc" was dropped or renamed`) {
		t.Fatalf("next request = %v, want ErrSchemaChanged naming column doc", err)
	}
}
