package bq

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery"
)

// DayStats are the destination's figures for one day.
type DayStats struct {
	Rows, DistinctIDs int64
}

// CountDay counts the destination's rows (and distinct ids) of day.
func (w *Warehouse) CountDay(ctx context.Context, day time.Time) (DayStats, error) {
	sql := fmt.Sprintf("SELECT COUNT(*) AS n, COUNT(DISTINCT %s) AS ids FROM %s WHERE %s",
		quote(w.idName()), w.DestRef(), w.dayBounds(day))
	// A count always has a row; none means the query failed unseen.
	c, err := Row[counts](w.Query(ctx, sql))
	if err != nil {
		return DayStats{}, fmt.Errorf("count %s %s: %w", w.dest, day.Format(time.DateOnly), err)
	}
	return DayStats{Rows: c.N, DistinctIDs: c.IDs}, nil
}

// counts is the row of a COUNT(*) AS n, COUNT(DISTINCT id) AS ids, MAX(id)
// AS max_id query (columns not selected stay zero).
type counts struct {
	N     int64 `bigquery:"n"`
	IDs   int64 `bigquery:"ids"`
	MaxID int64 `bigquery:"max_id"`
}

// RepeatedIDs counts the ids the destination holds more than once. A
// published day never holds an id twice, so these are ids in more than
// one day: the source's id column is not unique across days. The query
// reads only the id column.
func (w *Warehouse) RepeatedIDs(ctx context.Context) (int64, error) {
	sql := fmt.Sprintf("SELECT COUNT(*) FROM (SELECT %s FROM %s GROUP BY 1 HAVING COUNT(*) > 1)", quote(w.idName()), w.DestRef())
	it, err := w.Query(ctx, sql)
	if err != nil {
		return 0, fmt.Errorf("count repeated ids of %s: %w", w.dest, err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		return 0, fmt.Errorf("count repeated ids of %s: %w", w.dest, err)
	}
	n, ok := row[0].(int64)
	if !ok {
		return 0, fmt.Errorf("count repeated ids of %s: unexpected row %v", w.dest, row)
	}
	return n, nil
}
