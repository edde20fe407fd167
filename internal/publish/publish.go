// Package publish writes a destination day from what pgbq read of it,
// exactly once: by one MERGE from the day's staging table, batched with
// the days other loaders of the table have ready (Together, Batch), or by
// one load job replacing the day's partition (ByLoad), each behind the
// fence (Fence). The statements themselves and the fence's job calls are
// the warehouse's (bq.Warehouse.PublishDays, PublishFile and Fence, in
// internal/bq/publish.go and fence.go: they need its client and names);
// the caller, loader.Syncer, decides which path a day takes and what the
// counts after it mean (internal/loader/settle.go, direct.go).
//
// Why a day ends up in BigQuery exactly once (docs/design.md, "Exactly
// once", says the same at length):
//
//   - Every write replaces the day. The MERGE deletes the day's rows and
//     inserts staging's, one row per id; the load truncates the day's
//     partition. Repeating a publish — a second loader, a redelivered
//     message, a retry — gives the same day.
//   - Every job has a deterministic id, from what it writes: a retry after
//     a lost answer meets HTTP 409 and waits for the job it started
//     instead of running it twice.
//   - A job outlives its requester, and a cancel is a request, not a
//     promise (https://cloud.google.com/bigquery/docs/managing-jobs#cancel_jobs).
//     A stale MERGE reads staging by name whenever it runs, and a stale
//     load carries the day as it was read, so either could land after the
//     day was published again from a newer state and finished. So before
//     any publish of a day starts, Fence cancels every pgbq job that
//     writes that day of the destination and may still run (PENDING or
//     RUNNING in jobs.list, every account's) and waits until jobs.get
//     shows it DONE; without the permission to list every account's jobs
//     the listing fails, and so does the publish, rather than publishing
//     unfenced. The new publish is then the last to write the
//     day, and a process that is gone inserts no more jobs.
//   - After every publish the source is counted, and the day's rows and
//     distinct ids are counted (or known, when this call's own MERGE read
//     a staging table whose metadata did not change): the date is finished
//     only when they agree, and a day that holds an id twice is published
//     again. Every later publish of a finished day waits for the earlier
//     ones and is itself counted before the date is finished again.
//   - Columns: a MERGE lists one set of columns for every day in it, so a
//     day whose staging holds other columns than the leader's is left to
//     its own loader (Batch).
//
// The PostgreSQL-held coordination (package pgcoord: the queue, the turn,
// write tokens, leases) only saves duplicate work and keeps to BigQuery's
// rate limits; correctness does not depend on it.
package publish

import (
	"context"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/pgcoord"
)

// Together publishes day together with the days other loaders of the
// table have ready: each publish writes the destination, and BigQuery
// allows 5 writes per table per 10 s (DML counts toward that without
// being refused by it, but has limits of its own), so loaders that each
// published their own day would be bound to one day per 2 s, however many
// they are. Instead one loader at a time takes the table's turn and
// starts one statement publishing every day that is ready and not in a
// publish already, up to bq.PublishBatch; it hands the turn on hold(n)
// (bq.PublishHold when nil) after the start, and up to
// pgcoord.PublishesInFlight statements run at once (see
// pgcoord.Coord.PublishTogether). A staging table dropped since its day
// was announced fails the statement; the days are then published without
// it (ErrStagingGone when it is day's own).
//
// mine reports that this call's own batch published day (see
// pgcoord.Coord.PublishTogether).
func Together(ctx context.Context, c *pgcoord.Coord, wh *bq.Warehouse, day time.Time, hold func(n int) time.Duration) (mine bool, err error) {
	if hold == nil {
		hold = bq.PublishHold
	}
	return c.PublishTogether(ctx, wh.DestRef(), civil.DateOf(day), bq.PublishBatch, hold,
		func(ctx context.Context, dates []civil.Date, started func()) ([]civil.Date, error) {
			return Batch(ctx, wh, day, dates, started)
		})
}
