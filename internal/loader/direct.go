package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/publish"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// A day that is read in one go from its start can be published without
// waiting for its staging: the chunks' files, joined, are the whole day,
// and one load job writing the day's partition decorator with
// WRITE_TRUNCATE replaces it atomically (publish.ByLoad). Then
// a day's chain of jobs after its last row is read is one job, the
// publish, instead of two one after the other (the last staging load,
// then the MERGE that must read it), and the staging loads still paced
// by BigQuery's 5 writes per table per 10 s are not waited for: the day
// is read ahead of them to its end, and once it is published they are
// cancelled and staging is dropped.
//
// Only when each of these holds (otherwise the day is staged and
// published by MERGE as before):
//   - the day is closed: no row can still join it, so any two complete
//     readings of it are the same rows, and a publish that ran late would
//     write the same day (a MERGE from staging, by a loader that staged the
//     day itself, too);
//   - the day is read from its start by this call into an empty staging
//     table, so the files hold all of it (a day whose staging already
//     holds rows takes the staging path, where rows that have left the
//     source since show as a failure instead of a quietly smaller day);
//   - a unique index proves the ids unique: the rows, each at its own
//     keyset position, then hold each id once, which a load cannot check
//     (the MERGE de-duplicates);
//   - BigQuery can load the day so (bq.Warehouse.ByLoad): the table has no
//     JSON column (Parquet into JSON is not a documented load) and the
//     day has a partition of its own (1960-01-01..2159-12-31);
//   - the files together stay under DirectMaxBytes (memory);
//   - the table's publishes leave room: publish.ByLoad (pgcoord.Coord.PublishAlone) takes the
//     turn, finds no date waiting, no publish running and a write token
//     free, else the day goes through the queue with the others.
//
// Staging keeps every chunk that loaded, so a crash before the publish
// resumes as before; the publish, like every other, is verified by
// counting the source after it.

// DirectMaxBytes bounds a day's files held for a publish by load: about
// 5M rows of the bench's table.
const DirectMaxBytes = 32 << 20

// errDirectPublished stops the staging of a day published by load.
var errDirectPublished = errors.New("day published by load")

// direct gathers a day's files as they are encoded (Stages.Encoded) and
// publishes the day once the last one is there.
type direct struct {
	s     *Syncer
	log   *slog.Logger
	day   time.Time
	gen   bq.Generation
	state func() (syncstate.Entry, error)
	join  *parquetenc.Joiner
	stop  context.CancelCauseFunc // ends the staging once published

	rows             int
	first, last      schema.Key
	maxID            int64
	hash             int64     // the rows' fingerprint hash (Chunk.Hash)
	earliest, latest time.Time // the rows' instants

	done  chan struct{} // closed when the publish has ended (or was not tried)
	ok    bool          // the day is published, rows rows
	ms    int64
	crash error // a test's hook stopped the publish (seams)
	// failed: BigQuery refused the publish for rows outside the day's
	// partition (see publish.OutsidePartition); the date fails with it.
	failed error
}

// loadsOff is how long a process publishes from staging only after
// BigQuery refused a publish by load for quota (1,500 load jobs per table
// per day, https://cloud.google.com/bigquery/quotas#load_jobs): the quota
// is a rolling day, and every refused job counts toward it.
const loadsOff = time.Hour

// byLoad reports whether days may be published by load now (a test turns
// it off to show the staging path alone).
func (s *Syncer) byLoad() bool {
	if seams.noDirect != nil && seams.noDirect(s) {
		return false
	}
	return time.Now().UnixNano() >= s.loadsOffUntil.Load()
}

func (s *Syncer) newDirect(log *slog.Logger, day time.Time, gen bq.Generation, state func() (syncstate.Entry, error)) *direct {
	return &direct{s: s, log: log, day: day, gen: gen, state: state, join: s.Encoder.NewJoiner(), done: make(chan struct{})}
}

// add takes chunk c's file; with the day's last chunk it starts the
// publish. It runs on the encoding stage, in chunk order, and reports
// whether reading should go on ahead of the loads: only while the day may
// still be published by load (otherwise a day too large for it would
// queue chunks past a request's budget, which only bounds reading).
func (d *direct) add(ctx context.Context, c Chunk) bool {
	if d.join == nil {
		return false
	}
	if c.Rows > 0 {
		if d.join.Len()+c.Data.Len() > DirectMaxBytes {
			d.giveUp()
			return false
		}
		if err := d.join.Add(parquetenc.Part{Data: c.Data.Bytes(), Layout: c.Layout}); err != nil {
			d.log.Warn("day not published by load", "error", err.Error())
			d.giveUp()
			return false
		}
		if d.rows == 0 {
			d.first = c.First
		}
		d.rows += c.Rows
		d.last = c.Last
		d.maxID = max(d.maxID, c.MaxID)
		d.hash += c.Hash
		if d.earliest.IsZero() || c.Earliest.Before(d.earliest) {
			d.earliest = c.Earliest
		}
		if c.Latest.After(d.latest) {
			d.latest = c.Latest
		}
	}
	if !c.Final {
		return true
	}
	if d.rows == 0 {
		d.giveUp()
		return false
	}
	data := d.join.Finish()
	d.join = nil
	go d.publish(ctx, data)
	return false
}

func (d *direct) giveUp() {
	if d.join != nil {
		d.join = nil
		close(d.done)
	}
}

// publish publishes the day by load when the table's publishes leave room,
// and ends the staging when it did.
func (d *direct) publish(ctx context.Context, data []byte) {
	defer close(d.done)
	prev, err := d.state()
	if err != nil || prev.IsFinished {
		return // the staging says so too
	}
	if err := d.s.at("publish"); err != nil {
		d.crash = err // a test's crash: the whole sync stops here
		d.stop(err)
		return
	}
	wh := d.s.Warehouse
	t0 := time.Now()
	ran, wrote, err := publish.ByLoad(ctx, d.s.Source.Coord(), wh, publish.File{Day: d.day, Gen: d.gen, First: d.first, Last: d.last, Rows: d.rows, Data: data})
	d.ms = time.Since(t0).Milliseconds()
	switch {
	case err != nil && publish.OutsidePartition(err):
		// The day's reading holds rows of another day: a defect, which
		// a publish from staging would hide (its MERGE keeps the day's
		// rows only). The date fails, naming the rows' instants.
		d.failed = fmt.Errorf("%w: publish of %s by load refused, rows outside the day's partition: the %d rows read for it run from %s to %s (%v)",
			pgsource.ErrOutsideRange, d.day.Format(time.DateOnly), d.rows, d.earliest.Format(time.RFC3339Nano), d.latest.Format(time.RFC3339Nano), err)
		d.stop(d.failed)
	case err != nil && retry.QuotaExceeded(err):
		// The destination's 1,500 load jobs a day are spent (a long
		// back-fill): publish from staging for a while.
		d.s.loadsOffUntil.Store(time.Now().Add(loadsOff).UnixNano())
		d.log.Warn("publish by load refused by quota; days are published from staging for an hour", "error", err.Error())
	case err != nil:
		d.log.Warn("publish by load failed; the day is published from staging", "error", err.Error())
	case !ran:
		d.log.Info("publish by load: the table's publishes leave no room; the day is published from staging")
	case wrote != int64(d.rows):
		d.log.Warn("publish by load wrote another row count; the day is published from staging", "rows", d.rows, "written", wrote)
	default:
		d.ok = true
		d.stop(errDirectPublished)
	}
}

// wait waits for the publish, if one started, and reports whether it
// published the day.
func (d *direct) wait(ctx context.Context) bool {
	select {
	case <-d.done:
		return d.ok
	case <-ctx.Done():
		return false
	}
}
