package publish

import (
	"context"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/logging"
)

// Fence ends every earlier publish job of days before a publish of them
// starts (bq.Warehouse.Fence: a job outlives its requester, and a cancel
// may lose; see the package comment), and tells operators of each such
// job: one that ran after its requester was gone, or one the fence kept
// from landing. Until it returns nil the publish must not start.
func Fence(ctx context.Context, wh *bq.Warehouse, days []time.Time) error {
	jobs, err := wh.Fence(ctx, days)
	log := logging.From(ctx)
	dates := make([]string, len(days))
	for i, d := range days {
		dates[i] = d.Format(time.DateOnly)
	}
	for _, j := range jobs {
		if j.Ran {
			log.Warn("stale publish job ran", "job_id", j.ID, "dates", dates)
		} else {
			log.Warn("stale publish job fenced", "job_id", j.ID, "dates", dates)
		}
	}
	return err
}
