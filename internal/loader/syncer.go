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
			s.dropFinished(ctx, log, day)
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
	ck, ok := checkpointKey(prev, s.Source.Table().KeyKind)
	if !ok {
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
