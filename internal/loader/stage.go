package loader

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/syncstate"
)

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
		now.Hash += c.Hash
		last := c.Last
		now.Pos = &last
		// The staging table is the truth; this row is for people, the
		// planner, and a resume that finds a gap above it (see resume).
		// Losing it costs at most a re-read, so it does not stop us.
		t1 := time.Now()
		if err := s.appendState(ctx, syncstate.Entry{
			Table: s.Table, Date: civil.DateOf(day), State: syncstate.StateInProgress,
			LastMaxID: max(now.MaxID, prev.LastMaxID), LastCreatedAt: c.Last.Time, LastID: c.Last.ID, LastKey: lastKey(c.Last), RowsStaged: now.Rows, Writer: s.Writer,
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
			"checkpoint_ms", time.Since(t1).Milliseconds(), "last_id", c.Last.KeyString())
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
