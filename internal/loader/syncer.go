// Package loader syncs one (table, date) at a time: the chunk loop, the
// publish and the finish check, and the Pub/Sub front ends (push and pull)
// that feed it. The order write-then-checkpoint lives here and only here.
package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Outcome is how far one Sync call got.
type Outcome int

const (
	// Finished: the date is closed, published and verified.
	Finished Outcome = iota + 1
	// Published: all rows so far are in the destination, but the day is
	// not closed yet (today), so it stays unfinished.
	Published
	// Continue: the budget ran out or the date must be re-synced; a
	// continuation message should follow.
	Continue
	// Busy: another loader holds the date's lease.
	Busy
	// AlreadyFinished: nothing to do.
	AlreadyFinished
)

func (o Outcome) String() string {
	return [...]string{"", "finished", "published", "continue", "busy", "already_finished"}[o]
}

// ErrMismatch is the permanent failure of a closed date whose counts keep
// differing after a full re-sync.
var ErrMismatch = errors.New("count mismatch persists")

// Syncer syncs dates of one table.
type Syncer struct {
	Source    *pgsource.Source
	Warehouse *bq.Warehouse
	State     *syncstate.Store
	Encoder   *parquetenc.Encoder
	// Table is the name dates are recorded under (the destination table).
	Table     string
	ChunkSize int
	// Grace is how long after its end a day counts as closed.
	Grace time.Duration
	// Writer identifies this process in sync_control.
	Writer string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// hook, in tests, is called at named points of the loop; an error
	// aborts the sync there as a crash would.
	hook func(point string) error
	// noLease, in tests, skips the lease to show correctness without it.
	noLease bool
	// rowsLoaded counts rows appended to staging, for tests of rework.
	rowsLoaded atomic.Int64
	// mu guards Source, Warehouse and Encoder, which a schema change
	// replaces: each Sync reads them under the read lock.
	mu sync.RWMutex
}

// refresh follows columns added to the source: the destination gains them
// (older rows hold NULL), and the encoder writes them. Any other change of
// the source's columns stops the sync with ErrSchemaChanged.
func (s *Syncer) refresh(ctx context.Context, log *slog.Logger) error {
	s.mu.RLock()
	cur := s.Source
	s.mu.RUnlock()
	var src *pgsource.Source
	var added []string
	err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		src, added, err = cur.Refreshed(ctx)
		return err
	})
	if err != nil || len(added) == 0 {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Source != cur {
		return nil // another request got there first
	}
	wh, err := s.Warehouse.WithTable(src.Table())
	if err != nil {
		return err
	}
	if err := retry.Do(ctx, func(ctx context.Context, _ int) error { return wh.EnsureDestination(ctx) }); err != nil {
		return err
	}
	enc, err := parquetenc.New(src.Table())
	if err != nil {
		return err
	}
	s.Source, s.Warehouse, s.Encoder = src, wh, enc
	log.Warn("source columns added; destination extended", "columns", added)
	return nil
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Syncer) at(point string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(point)
}

// Sync works on day until it is published, the deadline (the request's
// budget) passes, or an error. Every step is safe to repeat: the position
// is recomputed from the staging table, and the publish replaces the day.
func (s *Syncer) Sync(ctx context.Context, day time.Time, deadline time.Time) (Outcome, error) {
	log := logging.From(ctx) // carries table and sync_date
	date := civil.DateOf(day)
	if err := s.refresh(ctx, log); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.noLease {
		release, err := s.Source.Lease(ctx, s.Table+"/"+date.String())
		if errors.Is(err, pgsource.ErrLocked) {
			return Busy, nil
		}
		if err != nil {
			return 0, err
		}
		defer release()
	}

	var prev syncstate.Entry
	err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		prev, _, err = s.State.Date(ctx, s.Table, date)
		return err
	})
	if err != nil {
		return 0, err
	}
	if prev.IsFinished {
		return AlreadyFinished, nil
	}
	var pos *schema.Key
	var staged, maxID int64
	err = retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		if err := s.Warehouse.EnsureStaging(ctx, day); err != nil {
			return err
		}
		if pos, err = s.Warehouse.StagedPosition(ctx, day); err != nil {
			return err
		}
		staged, maxID, err = s.Warehouse.StagedStats(ctx, day)
		return err
	})
	if err != nil {
		return 0, err
	}
	done, err := s.stage(ctx, log, day, pos, staged, max(maxID, prev.LastMaxID), deadline)
	if errors.Is(err, bq.ErrStagingGone) {
		log.Info("staging table dropped by another loader; starting over")
		return Continue, nil
	}
	if err != nil {
		return 0, err
	}
	if !done {
		return Continue, nil
	}
	return s.publish(ctx, log, day, prev)
}

// horizon is where reading the day stops: its end, or for a day still
// open, Grace ago. Rows newer than that may still be joined by rows that
// commit late with lower positions, so they wait for a later run instead
// of making the staged position jump past them.
func (s *Syncer) horizon(day time.Time) time.Time {
	end := day.AddDate(0, 0, 1)
	if h := s.now().Add(-s.Grace); h.Before(end) {
		end = h
	}
	return end
}

// stage runs the chunk loop: each chunk is loaded, then checkpointed; the
// reading and encoding of the next chunks overlap the load (see Extract).
// It returns done when a short chunk showed that every row of the day so
// far is staged.
func (s *Syncer) stage(ctx context.Context, log *slog.Logger, day time.Time, pos *schema.Key, staged, maxID int64, deadline time.Time) (done bool, err error) {
	runID := fmt.Sprintf("%x", time.Now().UnixNano())
	return Extract(ctx, s.Source, s.Encoder, day, s.horizon(day), pos, s.ChunkSize, deadline, func(ctx context.Context, c Chunk) error {
		if err := s.at("read"); err != nil {
			return err
		}
		t0 := time.Now()
		// A job id per (table, date, chunk start, request, attempt): a
		// retried insert of the same attempt cannot start a second job.
		// Should a failed attempt's job have landed after all, its rows
		// are duplicates in staging that the publish removes.
		err := retry.Do(ctx, func(ctx context.Context, attempt int) error {
			jobID := fmt.Sprintf("pgbq_%s_%s_%d_%d_%s_%d", s.Table, day.Format("20060102"), c.First.Time.UnixMicro(), c.First.ID, runID, attempt)
			return s.Warehouse.Load(ctx, day, jobID, c.Data.Bytes())
		})
		if err != nil {
			return fmt.Errorf("load chunk %d: %w", c.N, err)
		}
		loadMS := time.Since(t0).Milliseconds()
		s.rowsLoaded.Add(int64(c.Rows))
		if err := s.at("loaded"); err != nil {
			return err
		}
		staged += int64(c.Rows)
		maxID = max(maxID, c.MaxID)
		// The staging table is the truth; this row is for people and the
		// planner. Losing it costs nothing, so it does not stop us.
		t1 := time.Now()
		if err := s.appendState(ctx, syncstate.Entry{
			Table: s.Table, Date: civil.DateOf(day), State: syncstate.StateInProgress,
			LastMaxID: maxID, LastCreatedAt: c.Last.Time, LastID: c.Last.ID, RowsStaged: staged, Writer: s.Writer,
		}); err != nil {
			log.Warn("checkpoint not recorded", "error", err.Error())
		}
		log.Info("chunk staged", "chunk", c.N, "rows", c.Rows, "bytes", c.Data.Len(),
			"read_ms", c.Read.Milliseconds(), "encode_ms", c.Encode.Milliseconds(), "load_ms", loadMS,
			"checkpoint_ms", time.Since(t1).Milliseconds(), "last_id", c.Last.ID)
		return s.at("checkpointed")
	})
}

// publish puts the staged day into the destination and decides whether
// the date is finished.
func (s *Syncer) publish(ctx context.Context, log *slog.Logger, day time.Time, prev syncstate.Entry) (Outcome, error) {
	date := civil.DateOf(day)
	if err := s.at("publish"); err != nil {
		return 0, err
	}
	e := syncstate.Entry{Table: s.Table, Date: date, LastMaxID: prev.LastMaxID, Writer: s.Writer}
	// Is staging complete up to its position? A row committed late with a
	// position below it, or a staging table reset under us, shows here as
	// fewer distinct staged ids than source rows up to that position.
	var pos *schema.Key
	var staged, maxID, expected int64
	err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		if pos, err = s.Warehouse.StagedPosition(ctx, day); err != nil {
			return err
		}
		if staged, maxID, err = s.Warehouse.StagedStats(ctx, day); err != nil {
			return err
		}
		expected = 0
		if pos != nil {
			expected, err = s.Source.CountUpTo(ctx, day, *pos)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if pos != nil {
		e.LastCreatedAt, e.LastID = pos.Time, pos.ID
	}
	e.LastMaxID, e.RowsStaged = max(e.LastMaxID, maxID), staged
	if staged < expected {
		return s.resync(ctx, log, day, e, fmt.Sprintf("staging holds %d rows up to its position, the source %d", staged, expected))
	}
	// Queue-full errors and transaction conflicts are transient; the
	// publish is idempotent, so repeating it is safe.
	if err := retry.Do(ctx, func(ctx context.Context, _ int) error { return s.Warehouse.Publish(ctx, day) }); err != nil {
		return 0, err
	}
	if err := s.at("published"); err != nil {
		return 0, err
	}
	// Count the source after the publish: a row that arrives in between
	// makes the counts differ and the date is looked at again, never
	// finished short.
	var dest bq.DayStats
	var src int64
	err = retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		if dest, err = s.Warehouse.CountDay(ctx, day); err != nil {
			return err
		}
		src, err = s.Source.CountDay(ctx, day)
		return err
	})
	if err != nil {
		return 0, err
	}
	e.SourceRows, e.BigQueryRows = src, dest.Rows
	closed := s.now().After(day.AddDate(0, 0, 1).Add(s.Grace))
	log.Info("date published", "source_rows", src, "bigquery_rows", dest.Rows, "closed", closed)
	switch {
	case src == dest.Rows && closed:
		e.State, e.IsFinished = syncstate.StateFinished, true
		if err := s.at("finish"); err != nil {
			return 0, err
		}
		if err := s.appendState(ctx, e); err != nil {
			return 0, err
		}
		// Only after the finish is recorded: a crash before this leaves a
		// staging table that expires by itself.
		if err := s.Warehouse.DropStaging(ctx, day); err != nil {
			log.Warn("staging not dropped", "error", err.Error())
		}
		return Finished, nil
	case dest.Rows > src:
		e.State = syncstate.StateFailed
		e.Detail = fmt.Sprintf("BigQuery has %d rows for this day, the source %d: were rows deleted in PostgreSQL? pgbq syncs append-only tables", dest.Rows, src)
		if err := s.appendState(ctx, e); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%w: %s %s: %s", ErrMismatch, s.Table, date, e.Detail)
	case !closed:
		// Today: rows keep arriving; the planner brings the date back.
		e.State = syncstate.StatePublished
		if err := s.appendState(ctx, e); err != nil {
			return 0, err
		}
		return Published, nil
	default:
		// Rows arrived after the last chunk: stage them and publish again.
		e.State = syncstate.StateInProgress
		if err := s.appendState(ctx, e); err != nil {
			log.Warn("checkpoint not recorded", "error", err.Error())
		}
		return Continue, nil
	}
}

// maxResyncs bounds how often one date is rebuilt from scratch before it
// is declared failed.
const maxResyncs = 3

// resync empties the date's staging so that the next attempt syncs the
// day from its start.
func (s *Syncer) resync(ctx context.Context, log *slog.Logger, day time.Time, e syncstate.Entry, why string) (Outcome, error) {
	var n int64
	err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		n, err = s.State.CountState(ctx, s.Table, e.Date, syncstate.StateMismatch)
		return err
	})
	if err != nil {
		return 0, err
	}
	e.Detail = why
	if n >= maxResyncs {
		e.State = syncstate.StateFailed
		e.Detail += fmt.Sprintf("; %d full re-syncs did not fix it: is the id column unique?", n)
		if err := s.appendState(ctx, e); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%w: %s %s: %s", ErrMismatch, s.Table, e.Date, e.Detail)
	}
	log.Warn("staging incomplete, re-syncing date from its start", "reason", why)
	e.State = syncstate.StateMismatch
	if err := retry.Do(ctx, func(ctx context.Context, _ int) error { return s.Warehouse.DropStaging(ctx, day) }); err != nil {
		return 0, err
	}
	if err := s.appendState(ctx, e); err != nil {
		return 0, err
	}
	return Continue, nil
}

func (s *Syncer) appendState(ctx context.Context, e syncstate.Entry) error {
	return retry.Do(ctx, func(ctx context.Context, _ int) error { return s.State.Append(ctx, e) })
}

// Rebuild syncs day again from its start: the staging table is emptied,
// the date re-opened in sync_control with reason, then synced and
// published as usual. Rebuilding twice gives the same result.
func (s *Syncer) Rebuild(ctx context.Context, day time.Time, reason string) error {
	date := civil.DateOf(day)
	s.mu.RLock()
	wh := s.Warehouse
	s.mu.RUnlock()
	if err := retry.Do(ctx, func(ctx context.Context, _ int) error { return wh.DropStaging(ctx, day) }); err != nil {
		return err
	}
	if err := s.appendState(ctx, syncstate.Entry{Table: s.Table, Date: date, State: syncstate.StateReopened,
		Detail: reason, Writer: s.Writer}); err != nil {
		return err
	}
	for i := 0; i < 10000; i++ {
		out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
		if err != nil {
			return err
		}
		switch out {
		case Finished, Published:
			return nil
		case AlreadyFinished:
			return fmt.Errorf("rebuild %s %s: the date shows finished right after it was re-opened", s.Table, date)
		case Busy:
			// Another loader works the date; wait for its lease.
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return fmt.Errorf("rebuild %s %s: did not finish", s.Table, date)
}
