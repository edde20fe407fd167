package loader

import (
	"context"
	"log/slog"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
)

// dropFinished drops the staging table of day, a date already recorded
// finished, which needs it no more. It is cleanup, not correctness: it
// tries within bq.CleanupBudget and never waits out BigQuery's table
// metadata rate, which a day whose staging took its creation and 4 loads
// within 10 s has used up (the drop would wait for the window to clear,
// seconds after the date was done). A table it leaves is dropped by the
// planner's next run (planner.DropFinishedStaging), or expires.
func (s *Syncer) dropFinished(ctx context.Context, log *slog.Logger, day time.Time) {
	ctx, cancel := context.WithTimeout(ctx, bq.CleanupBudget)
	defer cancel()
	err := s.Warehouse.DropStaging(ctx, day)
	switch {
	case err == nil:
	case bq.LeftForLater(err):
		log.Info("staging table left to the planner", "staging_table", s.Warehouse.Staging(day), "error", err.Error())
	default:
		log.Warn("staging not dropped", "staging_table", s.Warehouse.Staging(day), "error", err.Error())
	}
}
