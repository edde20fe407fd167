package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/publish"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// publish puts the staged day into the destination and decides whether
// the date is finished.
//
// known, when set, is what staging holds if nothing but this call's loads
// wrote it since it was read (stage): rows of distinct keyset positions,
// with ids a unique index proves distinct. Staging only ever grows within
// its generation, so when its row count (table metadata, no job) is still
// known.Rows, it holds exactly those rows, each id once, and the query
// that would count them is not needed; and when the count is still that
// after the publish, the MERGE — which read staging in between — put
// exactly them into the day, so the destination needs no count either. Any other
// figure, or no known, takes the counting way: a query before the publish
// and one after it. On BigQuery each query is a job's latency, seconds.
func (s *Syncer) publish(ctx context.Context, log *slog.Logger, day time.Time, gen bq.Generation, prev syncstate.Entry, known *bq.Staged) (Outcome, error) {
	date := civil.DateOf(day)
	if err := s.at("publish"); err != nil {
		return 0, err
	}
	e := syncstate.Entry{Table: s.Table, Date: date, LastMaxID: prev.LastMaxID, Writer: s.Writer, Epoch: prev.Epoch}
	// Is staging complete up to its position? A row committed late with a
	// position below it, or a staging table reset under us, shows here as
	// fewer distinct staged ids than source rows up to that position.
	var st bq.Staged
	var expected int64
	err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		if known != nil && !s.stagingHolds(ctx, day, gen, known.Rows) {
			known = nil
		}
		if known != nil {
			st = *known
		} else {
			if st, err = s.Warehouse.StagedState(ctx, day, gen); err != nil {
				return err
			}
			st.Pos = s.Source.FromStaging(st.Pos)
		}
		expected = 0
		if st.Pos != nil {
			expected, err = s.Source.CountUpTo(ctx, day, *st.Pos)
		}
		return err
	})
	if errors.Is(err, bq.ErrStagingGone) {
		log.Info("staging table dropped by another loader before the publish; starting over")
		return Continue, nil
	}
	if err != nil {
		return 0, err
	}
	if st.Pos != nil {
		e.LastCreatedAt, e.LastID, e.LastKey = st.Pos.Time, st.Pos.ID, lastKey(*st.Pos)
	}
	e.LastMaxID, e.RowsStaged = max(e.LastMaxID, st.MaxID), st.DistinctIDs
	if st.DistinctIDs < expected {
		return s.resync(ctx, log, day, e, fmt.Sprintf("staging holds %d rows up to its position, the source %d", st.DistinctIDs, expected))
	}
	// Partition replacement by one MERGE, with the days other loaders have
	// ready; no transaction to conflict with, and repeating it is safe.
	t0 := time.Now()
	var mine bool
	err = retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		mine, err = publish.Together(ctx, s.Source.Coord(), s.Warehouse, day, s.PublishHold)
		return err
	})
	publishMS := time.Since(t0).Milliseconds()
	if errors.Is(err, bq.ErrStagingGone) {
		log.Info("staging table dropped by another loader before the publish; starting over")
		return Continue, nil
	}
	if err != nil {
		return 0, err
	}
	if err := s.at("published"); err != nil {
		return 0, err
	}
	// Fingerprint the source after the publish: a row that arrives,
	// leaves or is exchanged for another in between makes the
	// fingerprints differ and the date is looked at again, never finished
	// short or stale. The destination is known without a query only after
	// this request's own MERGE, started after its staging was complete: a
	// day published by another process's batch is known by its news alone,
	// which may come from a batch that read staging before this request's
	// last loads (or from any session of the source database), so it is
	// fingerprinted in BigQuery. Known, its hash is the one the loader
	// summed over the rows it read and staged (schema.KeyHash, as both
	// databases compute it).
	var dest, src schema.DayFingerprint
	unchanged := mine && known != nil && s.stagingHolds(ctx, day, gen, known.Rows)
	err = retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		if unchanged {
			dest = schema.DayFingerprint{Rows: st.Rows, DistinctKeys: st.DistinctIDs, Hash: st.Hash}
		} else if dest, err = s.Warehouse.FingerprintDay(ctx, day); err != nil {
			return err
		}
		src, err = s.Source.FingerprintDay(ctx, day)
		return err
	})
	if err != nil {
		return 0, err
	}
	return s.settle(ctx, log, day, e, dest, src, publishMS)
}

// closed reports whether day ended more than Grace ago: no row can still
// join it.
func (s *Syncer) closed(day time.Time) bool {
	return s.now().After(day.AddDate(0, 0, 1).Add(s.Grace))
}

// publishedByLoad finishes a day that d published by load: the day holds
// exactly d's rows (the load is atomic and replaced the partition), each
// id once, whose fingerprint d summed as it read them; the source is
// fingerprinted after it, as after every publish.
func (s *Syncer) publishedByLoad(ctx context.Context, log *slog.Logger, day time.Time, prev syncstate.Entry, d *direct) (Outcome, error) {
	if err := s.at("published_by_load"); err != nil {
		return 0, err
	}
	if err := s.at("published"); err != nil {
		return 0, err
	}
	e := syncstate.Entry{Table: s.Table, Date: civil.DateOf(day), LastMaxID: max(prev.LastMaxID, d.maxID),
		LastCreatedAt: d.last.Time, LastID: d.last.ID, LastKey: lastKey(d.last), RowsStaged: int64(d.rows), Writer: s.Writer, Epoch: prev.Epoch}
	var src schema.DayFingerprint
	err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		src, err = s.Source.FingerprintDay(ctx, day)
		return err
	})
	if err != nil {
		return 0, err
	}
	log.Info("date published by load", "rows", d.rows)
	return s.settle(ctx, log, day, e, schema.DayFingerprint{Rows: int64(d.rows), DistinctKeys: int64(d.rows), Hash: d.hash}, src, d.ms)
}

// settle decides, from the fingerprints after a publish (the source's
// taken after the day's last chunk was read), whether the date is
// finished, and records it: only when the day is closed and both
// fingerprints agree — the same count and the same keys by hash.
func (s *Syncer) settle(ctx context.Context, log *slog.Logger, day time.Time, e syncstate.Entry, dest, src schema.DayFingerprint, publishMS int64) (Outcome, error) {
	date := e.Date
	e.SourceRows, e.BigQueryRows = src.Rows, dest.Rows
	closed := s.closed(day)
	log.Info("date published", "source_rows", src.Rows, "bigquery_rows", dest.Rows, "closed", closed, "publish_ms", publishMS)
	switch {
	case dest.Rows != dest.DistinctKeys:
		// The publish keeps one row per id, so something else wrote
		// the day: publish it again.
		log.Warn("published day holds an id twice; publishing again", "bigquery_rows", dest.Rows, "distinct_ids", dest.DistinctKeys)
		return Continue, nil
	case src.Rows == dest.Rows && src.Hash == dest.Hash && closed:
		e.State, e.IsFinished = syncstate.StateFinished, true
		if err := s.at("finish"); err != nil {
			return 0, err
		}
		if err := s.appendState(ctx, e); err != nil {
			return 0, err
		}
		// Only after the finish is recorded: a crash before this leaves a
		// staging table that the planner drops. Never waits out a rate.
		s.dropFinished(ctx, log, day)
		return Finished, nil
	case dest.Rows > src.Rows:
		e.State = syncstate.StateFailed
		e.Detail = fmt.Sprintf("BigQuery has %d rows for this day, the source %d: were rows deleted in PostgreSQL? pgbq syncs append-only tables", dest.Rows, src.Rows)
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
	case src.Rows == dest.Rows:
		// As many rows, other keys: rows left the day and others joined
		// it after they were read (or a key was changed). Staging holds
		// the rows that left, so only a reading from the start helps.
		return s.resync(ctx, log, day, e, fmt.Sprintf("the fingerprints differ after the publish: source %s, BigQuery %s (rows/keys/hash)", src, dest))
	default:
		// Rows arrived after the last chunk: stage them and publish again.
		e.State = syncstate.StateInProgress
		if err := s.appendState(ctx, e); err != nil {
			log.Warn("checkpoint not recorded", "error", err.Error())
		}
		return Continue, nil
	}
}

// stagingHolds reports whether the staging table of day is still
// generation gen with rows rows, by its metadata. Any error says no: the
// caller then counts with a query, which reports what went wrong.
func (s *Syncer) stagingHolds(ctx context.Context, day time.Time, gen bq.Generation, rows int64) bool {
	g, n, err := s.Warehouse.StagingRows(ctx, day)
	return err == nil && g == gen && n == rows
}

// maxResyncs bounds how often one date is rebuilt from scratch since it
// was last re-opened before it is declared failed.
const maxResyncs = 3

// resync empties the date's staging so that the next attempt syncs the
// day from its start.
func (s *Syncer) resync(ctx context.Context, log *slog.Logger, day time.Time, e syncstate.Entry, why string) (Outcome, error) {
	// Rows with a NULL id never stage: no re-sync can help, and the
	// error names them.
	if err := s.Source.DayNullIDs(ctx, day); err != nil {
		if !errors.Is(err, pgsource.ErrUnsupported) {
			return 0, err
		}
		e.State, e.Detail = syncstate.StateFailed, err.Error()
		if aerr := s.appendState(ctx, e); aerr != nil {
			return 0, aerr
		}
		return 0, fmt.Errorf("%w: %s %s: %w", ErrMismatch, s.Table, e.Date, err)
	}
	var n int64
	err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		n, err = s.State.CountSinceReopened(ctx, s.Table, e.Date, syncstate.StateMismatch)
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
