package publish

import (
	"context"
	"strings"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/pgcoord"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/schema"
)

// File is a whole closed day read in one go, as one Parquet file: rows
// rows from first to last, for staging generation gen.
type File struct {
	Day         time.Time
	Gen         bq.Generation
	First, Last schema.Key
	Rows        int
	Data        []byte
}

// ByLoad publishes f's day by one load job replacing its partition
// (bq.Warehouse.PublishFile), when the table's publishes leave room
// (pgcoord.Coord.PublishAlone: the turn without waiting, no date waiting,
// no publish running, a write token free), behind the fence. It reports
// whether the publish ran, and the rows the job wrote. A lost answer is
// tried again under the same job id, which meets 409 and adopts the job;
// a refusal for rate or quota is not waited out: the caller publishes the
// day from staging instead.
func ByLoad(ctx context.Context, c *pgcoord.Coord, wh *bq.Warehouse, f File) (ran bool, wrote int64, err error) {
	ran, err = c.PublishAlone(ctx, wh.DestRef(), bq.PublishHold(1), func(ctx context.Context, started func()) (err error) {
		// No earlier publish of the day may land after this one.
		if err := Fence(ctx, wh, []time.Time{f.Day}); err != nil {
			return err
		}
		for attempt := 1; ; attempt++ {
			wrote, err = wh.PublishFile(ctx, f.Day, f.Gen, f.First, f.Last, f.Rows, f.Data, started)
			if err == nil || attempt == 3 || !retry.Transient(err) || retry.RateLimited(err) || ctx.Err() != nil {
				return err
			}
		}
	})
	return ran, wrote, err
}

// OutsidePartition reports whether err is BigQuery refusing a load into a
// partition decorator because rows belong to other partitions. BigQuery
// gives that refusal no reason of its own ("invalid"), only its message
// (https://cloud.google.com/bigquery/docs/managing-partitioned-table-data).
func OutsidePartition(err error) bool {
	return strings.Contains(err.Error(), "belong to different partitions")
}
