package bq

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/schema"
)

// DayVersions is pgsource.Changes.DayVersions on the destination: per UTC
// day in [from, to), the sum of each row's column (the updated-at column,
// by its BigQuery name) as microseconds since the epoch modulo modulus.
// ok is false when the destination has no such TIMESTAMP or DATETIME
// column (excluded from the sync): there is nothing to compare.
func (w *Warehouse) DayVersions(ctx context.Context, column string, modulus int64, from, to time.Time) (sums map[civil.Date]int64, ok bool, err error) {
	var micros string
	for _, c := range w.table.Columns {
		if c.Name != column {
			continue
		}
		switch c.Type {
		case schema.Timestamp:
			micros = "UNIX_MICROS(" + quote(c.Name) + ")"
		case schema.Datetime:
			micros = "UNIX_MICROS(TIMESTAMP(" + quote(c.Name) + "))" // a wall clock read as UTC, as PostgreSQL's side reads it
		}
	}
	if micros == "" {
		return nil, false, nil
	}
	sql := fmt.Sprintf("SELECT DATE(%s) AS day, IFNULL(SUM(MOD(MOD(%s, %d) + %d, %d)), 0) AS v FROM %s WHERE %s GROUP BY 1",
		quote(w.tsName()), micros, modulus, modulus, modulus, w.DestRef(), w.rangeBounds(from, to))
	rows, err := Rows[struct {
		Day civil.Date `bigquery:"day"`
		V   int64      `bigquery:"v"`
	}](w.Query(ctx, sql))
	if err != nil {
		return nil, false, fmt.Errorf("sum %s of %s by day: %w", column, w.dest, err)
	}
	sums = map[civil.Date]int64{}
	for _, r := range rows {
		sums[r.Day] = r.V
	}
	return sums, true, nil
}
