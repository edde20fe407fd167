package bq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/api/iterator"

	"github.com/pgbq/pgbq/internal/retry"
)

// CleanupBudget bounds a drop that only tidies up: the staging table of a
// date already recorded finished. BigQuery allows 5 table metadata update
// operations per table per 10 s, a tables.delete among them
// (https://cloud.google.com/bigquery/quotas#standard_tables), and a day
// whose staging table was made and took 4 loads within 10 s has none left;
// the Go client retries the refusal with back-off until the window clears.
// Such a drop gives up at the budget instead and leaves the table to the
// planner's next run (or its expiry).
const CleanupBudget = 2 * time.Second

// LeftForLater reports whether err, from a drop under CleanupBudget, means
// the table was not dropped now but may be later: BigQuery's rate refused
// it, or the budget ran out first.
func LeftForLater(err error) bool {
	return retry.RateLimited(err) || errors.Is(err, context.DeadlineExceeded)
}

// StagingDays lists the days that have a staging table of w's destination
// in the staging dataset (tables.list, every page). A table of another
// destination whose name shares the prefix (dest "a" and "a_b") is not one
// of them: only a name Staging gives back for its day counts.
func (w *Warehouse) StagingDays(ctx context.Context) ([]time.Time, error) {
	prefix := fmt.Sprintf("pgbq_stage_%s_", w.dest)
	it := w.Client.Dataset(w.cfg.StagingDataset).Tables(ctx)
	var days []time.Time
	for {
		t, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return days, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list tables of dataset %s: %w", w.cfg.StagingDataset, err)
		}
		rest, ok := strings.CutPrefix(t.TableID, prefix)
		if !ok {
			continue
		}
		day, err := time.Parse("20060102", rest)
		if err != nil || w.Staging(day) != t.TableID {
			continue
		}
		days = append(days, day)
	}
}

// StagingDays lists the days that have a staging table (see
// Warehouse.StagingDays).
func (s StagingTables) StagingDays(ctx context.Context) ([]time.Time, error) {
	return s.w.StagingDays(ctx)
}
