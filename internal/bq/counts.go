package bq

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/schema"
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

// DayFingerprints summarises each UTC day in [from, to) that has rows in
// the destination.
func (w *Warehouse) DayFingerprints(ctx context.Context, from, to time.Time) (map[civil.Date]schema.DayFingerprint, error) {
	id := quote(w.idName())
	sql := fmt.Sprintf("SELECT DATE(%s) AS day, COUNT(*) AS n, COUNT(DISTINCT %s) AS ids, MIN(%s) AS min_id, MAX(%s) AS max_id, CAST(SUM(CAST(%s AS NUMERIC)) AS STRING) AS sum_id FROM %s WHERE %s GROUP BY 1",
		quote(w.tsName()), id, id, id, id, w.DestRef(), w.rangeBounds(from, to))
	type dayRow struct {
		Day   civil.Date `bigquery:"day"`
		N     int64      `bigquery:"n"`
		IDs   int64      `bigquery:"ids"`
		MinID int64      `bigquery:"min_id"`
		MaxID int64      `bigquery:"max_id"`
		SumID string     `bigquery:"sum_id"`
	}
	rows, err := Rows[dayRow](w.Query(ctx, sql))
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s by day: %w", w.dest, err)
	}
	out := map[civil.Date]schema.DayFingerprint{}
	for _, r := range rows {
		out[r.Day] = schema.DayFingerprint{Rows: r.N, DistinctIDs: r.IDs, MinID: r.MinID, MaxID: r.MaxID, SumID: normalizeDecimal(r.SumID)}
	}
	return out, nil
}

// normalizeDecimal drops a fractional part of zeros ("12.000" -> "12").
func normalizeDecimal(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 && strings.Trim(s[i+1:], "0") == "" {
		return s[:i]
	}
	return s
}
