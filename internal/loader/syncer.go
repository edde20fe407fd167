// Package loader syncs one (table, date) at a time: the chunk loop, the
// publish and the finish check, and the Pub/Sub front ends (push and pull)
// that feed it. The order write-then-checkpoint lives here and only here.
//
// Exactly once (docs/design.md, "Exactly once"): loads are atomic and
// adopted by deterministic ids; staging is the truth for the position;
// a publish replaces whole days; a job outlives its requester, so every
// publish is fenced — it starts only once every earlier publish job of
// its days has ended, as jobs.get shows (fence.go) — and a date is
// finished only on counts that follow its own publish: counted in
// BigQuery, or known from this request's own MERGE of its own staging,
// never from another process's news.
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
	"github.com/googleapis/gax-go/v2"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgcoord"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/publish"
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
	names := [...]string{"", "finished", "published", "continue", "busy", "already_finished"}
	if o <= 0 || int(o) >= len(names) {
		return fmt.Sprintf("outcome(%d)", int(o))
	}
	return names[o]
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
	// Start is SYNC_START_DATE (zero when unset): messages for earlier
	// dates are refused (Service.Refusal).
	Start civil.Date
	// Writer identifies this process in sync_control.
	Writer string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Broken, when set, is why the table cannot be synced (Source,
	// Warehouse and Encoder are then nil): each Sync first calls Reopen,
	// and while that fails, fails the date with the reason — permanently
	// unless the reason is transient — so that the message is recorded
	// failed and acked instead of retried into the dead-letter topic.
	Broken error
	// Reopen opens the table again; see Broken.
	Reopen func(ctx context.Context) (*pgsource.Source, *bq.Warehouse, error)
	// PublishHold is how long a loader's turn at publishing lasts after a
	// publish of n days started (see publish.Together); bq.PublishHold when
	// nil. Only a simulation whose BigQuery runs its rate limits faster
	// sets it.
	PublishHold func(n int) time.Duration
	// mu guards Source, Warehouse and Encoder, which a schema change
	// replaces: each Sync reads them under the read lock.
	mu sync.RWMutex
	// loadsOffUntil (UnixNano) is when days may be published by load
	// again after a refusal for quota (see direct.go).
	loadsOffUntil atomic.Int64
	// first caches the table's first date (see firstDate).
	firstMu sync.Mutex
	first   civil.Date
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
	if err := EnsureDestination(ctx, src, wh); err != nil {
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

// ErrBroken marks a date of a table that cannot be synced now (see
// Syncer.Broken).
var ErrBroken = errors.New("table cannot be synced")

// heal opens a broken table again; while it stays broken, it returns the
// reason as an ErrBroken.
func (s *Syncer) heal(ctx context.Context, log *slog.Logger) error {
	s.mu.RLock()
	broken := s.Broken != nil
	s.mu.RUnlock()
	if !broken {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Broken == nil {
		return nil
	}
	if s.Reopen != nil {
		src, wh, err := s.Reopen(ctx)
		if err == nil {
			enc, encErr := parquetenc.New(src.Table())
			if encErr == nil {
				s.Source, s.Warehouse, s.Encoder, s.Broken = src, wh, enc, nil
				log.Info("table can be synced again")
				return nil
			}
			src.Close()
			err = encErr
		}
		s.Broken = err
	}
	return fmt.Errorf("%w: %w", ErrBroken, s.Broken)
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// seams are where tests reach into a sync (export_test.go sets them; all
// nil in production): hook is called at named points of the loop and its
// error aborts the sync there as a crash would; noLease skips the lease to
// show correctness without it; loaded counts rows appended to staging.
var seams struct {
	hook     func(s *Syncer, point string) error
	noLease  func(s *Syncer) bool
	noDirect func(s *Syncer) bool
	loaded   func(s *Syncer, rows int)
}

func (s *Syncer) at(point string) error {
	if seams.hook == nil {
		return nil
	}
	return seams.hook(s, point)
}

// Sync works on day until it is published, the deadline (the request's
// budget) passes, or an error. Every step is safe to repeat: the position
// is recomputed from the staging table, and the publish replaces the day.
func (s *Syncer) Sync(ctx context.Context, day time.Time, deadline time.Time) (Outcome, error) {
	log := logging.From(ctx) // carries table and sync_date
	date := civil.DateOf(day)
	if err := s.heal(ctx, log); err != nil {
		return 0, err
	}
	if err := s.refresh(ctx, log); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if seams.noLease == nil || !seams.noLease(s) {
		release, err := s.Source.Coord().Lease(ctx, s.Table+"/"+date.String())
		if errors.Is(err, pgcoord.ErrLocked) {
			return Busy, nil
		}
		if err != nil {
			return 0, err
		}
		defer release()
	}

	// The date's state is read while staging is looked at and, when the
	// day starts from nothing, while its first chunks are read, encoded
	// and loaded: on BigQuery the read is a query job, seconds of latency.
	// Nothing is checkpointed before the state is known (see stage).
	stateRead := make(chan stateResult, 1)
	go func() {
		var r stateResult
		r.err = retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
			r.prev, _, err = s.State.Date(ctx, s.Table, date)
			return err
		})
		stateRead <- r
	}()
	state := sync.OnceValues(func() (syncstate.Entry, error) {
		r := <-stateRead
		return r.prev, r.err
	})
	// Ids a unique index proves unique let the publish trust row counts
	// (see publish); without that proof it counts distinct ids.
	unique, err := s.Source.UniqueIDs(ctx)
	if err != nil {
		return 0, err
	}
	st, ok, err := s.Warehouse.ExistingStaged(ctx, day)
	made := !ok
	if !ok {
		// No staging table yet (or one to be remade for added columns, or
		// the read failed): make it; one this call made is empty.
		err = retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
			st, err = s.Warehouse.OpenStaging(ctx, day)
			return err
		})
	}
	if errors.Is(err, bq.ErrStagingGone) {
		log.Info("staging table dropped by another loader; starting over")
		return Continue, nil
	}
	if err != nil {
		return 0, err
	}
	st.Pos = s.Source.FromStaging(st.Pos) // staging holds instants; positions are in the source's terms
	var prev syncstate.Entry
	resumed := st.Pos
	if st.Pos != nil {
		// Where to go on depends on the last checkpoint (see resume).
		if prev, err = state(); err != nil {
			return 0, err
		}
		if prev.IsFinished {
			return AlreadyFinished, nil
		}
		if err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
			resumed, err = s.resume(ctx, day, st, prev)
			return err
		}); err != nil {
			return 0, err
		}
	}
	// Staging is known exactly when it held each id once and the day goes
	// on right after its last row: then it is what it held plus the chunks
	// loaded below, each row once (see publish).
	exact := unique && st.Rows == st.DistinctIDs && resumed == st.Pos
	st.Pos = resumed
	// A closed day read to its end from its start into an empty staging
	// table, with unique ids, may be published by one load job of its
	// files (see direct.go), when BigQuery can load its columns and day
	// that way (bq.Warehouse.ByLoad).
	to := s.horizon(day)
	var d *direct
	if resumed == nil && st.Rows == 0 && unique && to.Equal(day.AddDate(0, 0, 1)) && s.byLoad() && s.Warehouse.ByLoad(day) {
		d = s.newDirect(log, day, st.Gen, state)
	}
	done, known, err := s.stage(ctx, log, day, to, st, state, deadline, d)
	if errors.Is(err, errFinished) {
		if made {
			// Made for a date that turned out finished (a message
			// delivered again): nothing of it is needed.
			if err := s.Warehouse.DropStaging(ctx, day); err != nil {
				log.Warn("staging not dropped", "error", err.Error())
			}
		}
		return AlreadyFinished, nil
	}
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
	// A day with no chunk to stage never asked for the state.
	if prev, err = state(); err != nil {
		return 0, err
	}
	if prev.IsFinished {
		return AlreadyFinished, nil
	}
	if d != nil && d.ok {
		return s.publishedByLoad(ctx, log, day, prev, d)
	}
	if !exact {
		known = nil
	}
	return s.publish(ctx, log, day, st.Gen, prev, known)
}

// stateResult is a read of the date's state.
type stateResult struct {
	prev syncstate.Entry
	err  error
}

// errFinished stops a sync that started before it knew its date was
// already finished.
var errFinished = errors.New("date already finished")

// resume is where staging continues: the last staged position when
// everything up to it is staged (staged distinct ids = source rows up to
// it). With several loads in flight a crash can leave a later chunk staged
// above an earlier one that never landed; then the newest checkpoint,
// which only ever advances over a fully staged prefix, is used if it
// still checks out, else the day's start. Chunks read again from there
// are the same chunks, with the same job ids, so the loads that did land
// are adopted, not staged twice; at most LoadsInFlight chunks are redone.
func (s *Syncer) resume(ctx context.Context, day time.Time, st bq.Staged, prev syncstate.Entry) (*schema.Key, error) {
	if st.Pos == nil {
		return nil, nil
	}
	n, err := s.Source.CountUpTo(ctx, day, *st.Pos)
	if err != nil || n == st.DistinctIDs {
		return st.Pos, err
	}
	// The checkpoint is in the source's terms, as every position.
	ck := schema.Key{Time: prev.LastCreatedAt.UTC(), ID: prev.LastID}
	if prev.LastCreatedAt.IsZero() {
		return nil, nil
	}
	if in, err := s.Source.InDay(ctx, day, ck); err != nil || !in {
		return nil, err
	}
	src, err := s.Source.CountUpTo(ctx, day, ck)
	if err != nil {
		return nil, err
	}
	staged, err := s.Warehouse.StagedCountUpTo(ctx, day, s.Source.ToStaging(ck))
	if err != nil || staged != src {
		return nil, err
	}
	return &ck, nil
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

// LoadsInFlight is how many load jobs of one date run at once. A real load
// job takes seconds whatever its size (queued, then run), so one at a time
// would move a day at one chunk per job latency. BigQuery allows 5 jobs
// writing one table per 10 s (bq.Pacer keeps the staging table under it),
// so with loads of a few seconds four in flight reach that ceiling; four
// also bound what a crash can make redo: the chunks loaded but not yet
// committed (their loads are adopted by job id, not run again).
const LoadsInFlight = 4

// stage runs the chunk loop over the rows of day before to: chunks are
// loaded up to LoadsInFlight at a time, and checkpointed in order over the
// prefix that is entirely staged;
// reading and encoding the next chunks overlap the loads (see Extract).
// The first checkpoint waits for the date's state (errFinished when the
// date turns out finished), so loads may start before it is read. It
// returns done when a short chunk showed that every row of the day so far
// is staged, and what staging holds if it held st and took each chunk
// once: st plus the chunks, counted.
//
// With d set, each chunk's file also goes to d as it is encoded (reading
// runs ahead of the loads to the day's end: Stages.Encoded), and
// once d has published the day the staging stops (done, with known as far
// as it got: d.ok tells).
func (s *Syncer) stage(ctx context.Context, log *slog.Logger, day, to time.Time, st bq.Staged,
	state func() (syncstate.Entry, error), deadline time.Time, d *direct) (done bool, known *bq.Staged, err error) {
	now := st
	var mu sync.Mutex
	loadTimes := map[int]time.Duration{}
	// Loads into one staging table are spaced to BigQuery's 5 table writes
	// per 10 s; with LoadsInFlight side by side a day moves at up to five
	// chunks per 10 s instead of one per job latency.
	var pace bq.Pacer
	// The staging table's creation (its generation is its creation time)
	// is a write of it too.
	pace.Record(time.UnixMicro(int64(st.Gen)))
	load := func(ctx context.Context, c Chunk) error {
		if err := s.at("read"); err != nil {
			return err
		}
		t0 := time.Now()
		// The load's job id is derived from the chunk and the staging
		// generation, so a retry — ours, the client's, or another
		// loader's after a crash — finds a load that landed after all
		// instead of staging its rows twice.
		err := retry.Do(ctx, func(ctx context.Context, _ int) error {
			if err := pace.Wait(ctx); err != nil {
				return err
			}
			return s.Warehouse.Load(ctx, day, st.Gen, c.First, c.Last, c.Rows, c.Data.Bytes())
		})
		if err != nil {
			return fmt.Errorf("load chunk %d: %w", c.N, err)
		}
		mu.Lock()
		loadTimes[c.N] = time.Since(t0)
		mu.Unlock()
		if seams.loaded != nil {
			seams.loaded(s, c.Rows)
		}
		return s.at("loaded")
	}
	commit := func(ctx context.Context, c Chunk) error {
		prev, err := state()
		if err != nil {
			return err
		}
		if prev.IsFinished {
			return errFinished
		}
		now.Rows += int64(c.Rows)
		now.DistinctIDs += int64(c.Rows)
		now.MaxID = max(now.MaxID, c.MaxID)
		last := c.Last
		now.Pos = &last
		// The staging table is the truth; this row is for people, the
		// planner, and a resume that finds a gap above it (see resume).
		// Losing it costs at most a re-read, so it does not stop us.
		t1 := time.Now()
		if err := s.appendState(ctx, syncstate.Entry{
			Table: s.Table, Date: civil.DateOf(day), State: syncstate.StateInProgress,
			LastMaxID: max(now.MaxID, prev.LastMaxID), LastCreatedAt: c.Last.Time, LastID: c.Last.ID, RowsStaged: now.Rows, Writer: s.Writer,
			Epoch: prev.Epoch,
		}); err != nil {
			log.Warn("checkpoint not recorded", "error", err.Error())
		}
		mu.Lock()
		loadMS := loadTimes[c.N].Milliseconds()
		delete(loadTimes, c.N)
		mu.Unlock()
		log.Info("chunk staged", "chunk", c.N, "rows", c.Rows, "bytes", c.Data.Len(),
			"read_ms", c.Read.Milliseconds(), "encode_ms", c.Encode.Milliseconds(), "load_ms", loadMS,
			"checkpoint_ms", time.Since(t1).Milliseconds(), "last_id", c.Last.ID)
		return s.at("checkpointed")
	}
	stages := Stages{Load: load, Commit: commit, InFlight: LoadsInFlight}
	xctx := ctx
	if d != nil {
		var stop context.CancelCauseFunc
		xctx, stop = context.WithCancelCause(ctx)
		defer stop(nil)
		d.stop = stop
		stages.Encoded = func(c Chunk) bool { return d.add(ctx, c) }
	}
	done, err = Extract(xctx, s.Source, s.Encoder, day, to, st.Pos, s.ChunkSize, deadline, stages)
	if d != nil {
		d.giveUp() // when the day's last chunk was never reached
		if d.wait(ctx) {
			return true, &now, nil
		}
		if d.crash != nil {
			return false, &now, d.crash
		}
		if d.failed != nil {
			return false, &now, d.failed
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	return done, &now, err
}

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
		e.LastCreatedAt, e.LastID = st.Pos.Time, st.Pos.ID
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
	// Count the source after the publish: a row that arrives in between
	// makes the counts differ and the date is looked at again, never
	// finished short. The destination is known without a count only after
	// this request's own MERGE, started after its staging was complete: a
	// day published by another process's batch is known by its news alone,
	// which may come from a batch that read staging before this request's
	// last loads (or from any session of the source database), so it is
	// counted in BigQuery.
	var dest bq.DayStats
	var src int64
	unchanged := mine && known != nil && s.stagingHolds(ctx, day, gen, known.Rows)
	err = retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		if unchanged {
			dest = bq.DayStats{Rows: st.Rows, DistinctIDs: st.DistinctIDs}
		} else if dest, err = s.Warehouse.CountDay(ctx, day); err != nil {
			return err
		}
		src, err = s.Source.CountDay(ctx, day)
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
// id once; the source is counted after it, as after every publish.
func (s *Syncer) publishedByLoad(ctx context.Context, log *slog.Logger, day time.Time, prev syncstate.Entry, d *direct) (Outcome, error) {
	if err := s.at("published_by_load"); err != nil {
		return 0, err
	}
	if err := s.at("published"); err != nil {
		return 0, err
	}
	e := syncstate.Entry{Table: s.Table, Date: civil.DateOf(day), LastMaxID: max(prev.LastMaxID, d.maxID),
		LastCreatedAt: d.last.Time, LastID: d.last.ID, RowsStaged: int64(d.rows), Writer: s.Writer, Epoch: prev.Epoch}
	var src int64
	err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		src, err = s.Source.CountDay(ctx, day)
		return err
	})
	if err != nil {
		return 0, err
	}
	log.Info("date published by load", "rows", d.rows)
	return s.settle(ctx, log, day, e, bq.DayStats{Rows: int64(d.rows), DistinctIDs: int64(d.rows)}, src, d.ms)
}

// settle decides, from the counts after a publish, whether the date is
// finished, and records it.
func (s *Syncer) settle(ctx context.Context, log *slog.Logger, day time.Time, e syncstate.Entry, dest bq.DayStats, src, publishMS int64) (Outcome, error) {
	date := e.Date
	e.SourceRows, e.BigQueryRows = src, dest.Rows
	closed := s.closed(day)
	log.Info("date published", "source_rows", src, "bigquery_rows", dest.Rows, "closed", closed, "publish_ms", publishMS)
	switch {
	case dest.Rows != dest.DistinctIDs:
		// The publish keeps one row per id, so something else wrote
		// the day: publish it again.
		log.Warn("published day holds an id twice; publishing again", "bigquery_rows", dest.Rows, "distinct_ids", dest.DistinctIDs)
		return Continue, nil
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

func (s *Syncer) appendState(ctx context.Context, e syncstate.Entry) error {
	// One synced_at for every attempt: the row's insertId derives from
	// its content, so a retried insert is recognised as the same row.
	e = s.State.Stamp(e)
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
	// The re-opening starts the date's next epoch (see syncstate.Entry).
	var prev syncstate.Entry
	if err := retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		prev, _, err = s.State.Date(ctx, s.Table, date)
		return err
	}); err != nil {
		return err
	}
	if err := s.appendState(ctx, syncstate.Entry{Table: s.Table, Date: date, State: syncstate.StateReopened,
		Detail: reason, Writer: s.Writer, Epoch: prev.Epoch + 1}); err != nil {
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

// EnsureDestination creates or extends wh's destination table under a
// lease, so that of many loaders starting together (or noticing the same
// added column) one writes the table's metadata and the others only read
// it: BigQuery allows 5 metadata updates per 10 s per table. Without the
// lease (it expired, the process paused) the change is still idempotent.
func EnsureDestination(ctx context.Context, src *pgsource.Source, wh *bq.Warehouse) error {
	bo := gax.Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}
	for {
		release, err := src.Coord().Lease(ctx, "schema/"+wh.DestRef())
		if errors.Is(err, pgcoord.ErrLocked) {
			if err := gax.Sleep(ctx, bo.Pause()); err != nil {
				return fmt.Errorf("wait for the schema lease of %s: %w", wh.DestRef(), err)
			}
			continue
		}
		if err != nil {
			return err
		}
		err = retry.Do(ctx, func(ctx context.Context, _ int) error { return wh.EnsureDestination(ctx) })
		release()
		return err
	}
}
