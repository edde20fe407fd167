package publish

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/logging"
)

// Batch is a leader's turn (see Together): it publishes dates, the
// announced days it claimed, day (its own) among them, by one MERGE into
// wh's destination, and returns those it published. A staging table dropped since its day was
// announced fails the statement; the days are then published without it
// (ErrStagingGone when it is day's own).
//
// A day goes into the batch only when its staging holds the leader's
// columns (ownColumns): the statement lists one set of columns for every
// day, so a day staged with a column the leader does not know would lose
// it, and one staged without a column the leader knows would fail the
// whole statement. Such days are left to their owners, who publish them
// with their own columns on their next turn.
func Batch(ctx context.Context, wh *bq.Warehouse, day time.Time, dates []civil.Date, started func()) ([]civil.Date, error) {
	dates = ownColumns(ctx, wh, day, dates)
	days := make([]time.Time, len(dates))
	for i, d := range dates {
		days[i] = d.In(time.UTC)
	}
	// No earlier publish of these days may land after this one.
	if err := Fence(ctx, wh, days); err != nil {
		return nil, err
	}
	err := wh.PublishDays(ctx, days, started)
	if err == nil {
		return dates, nil
	}
	var gone []civil.Date
	for _, d := range wh.MissingStaging(ctx, days) {
		gone = append(gone, civil.DateOf(d))
	}
	if len(gone) == 0 {
		return nil, err
	}
	if slices.Contains(gone, civil.DateOf(day)) {
		return nil, fmt.Errorf("%w: %w", bq.ErrStagingGone, err)
	}
	left := slices.DeleteFunc(dates, func(d civil.Date) bool { return slices.Contains(gone, d) })
	days = days[:0]
	for _, d := range left {
		days = append(days, d.In(time.UTC))
	}
	if err := wh.PublishDays(ctx, days, started); err != nil {
		return nil, err
	}
	return left, nil
}

// ownColumns keeps day and those of dates whose staging holds exactly the
// columns this loader stages, read from each staging table's metadata
// (side by side: a tables.get each, no job). A day whose staging cannot
// be read is left out too: its owner publishes it.
func ownColumns(ctx context.Context, wh *bq.Warehouse, day time.Time, dates []civil.Date) []civil.Date {
	own := civil.DateOf(day)
	same := make([]bool, len(dates))
	var wg sync.WaitGroup
	for i, d := range dates {
		if d == own {
			same[i] = true
			continue
		}
		wg.Go(func() {
			ok, err := wh.StagedWithOwnColumns(ctx, d.In(time.UTC))
			same[i] = err == nil && ok
		})
	}
	wg.Wait()
	var out []civil.Date
	for i, d := range dates {
		if same[i] {
			out = append(out, d)
		} else {
			logging.From(ctx).Info("day left to its loader: staged with other columns", "other_date", d.String())
		}
	}
	return out
}
