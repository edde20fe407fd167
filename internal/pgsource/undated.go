package pgsource

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// BigQuery's TIMESTAMP range is [DatedFrom, DatedUntil). A row whose
// timestamp column is NULL, ±infinity or outside that range belongs to no
// date: pgbq never syncs it, and counts it (docs/types.md, "Rows without a date").
var (
	DatedFrom  = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	DatedUntil = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// undatedSQL counts the rows of table whose timestamp column ts is NULL
// or outside [$1, $2); the (timestamp, id) index serves the three ranges.
// For a wall clock in a stated zone, $1 and $2 are the wall-clock range
// span gives, which holds every dated row and more: the rows outside
// [$3, $4) by their instant are counted as well.
func undatedSQL(table, ts string, wallKey bool, instant string) string {
	if wallKey {
		return fmt.Sprintf(`SELECT count(*) FROM %[1]s WHERE %[2]s IS NULL OR %[2]s < $1 OR %[2]s >= $2
  OR (%[2]s < $1::timestamp + interval '2 days' AND %[3]s < $3) OR (%[2]s >= $2::timestamp - interval '2 days' AND %[3]s >= $4)`, table, ts, instant)
	}
	return fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s IS NULL OR %s < $1 OR %s >= $2`, table, ts, ts, ts)
}

// CountUndated counts the rows that belong to no date (see DatedFrom).
func (s *Source) CountUndated(ctx context.Context) (int64, error) {
	lo, hi, keep, err := s.span(ctx, DatedFrom, DatedUntil)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := s.pool.QueryRow(ctx, s.undatedSQL, append([]any{lo, hi}, keep...)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows without a date in %s: %w", s.Name(), err)
	}
	return n, nil
}

// TimestampColumn is the name of the table's timestamp column.
func (s *Source) TimestampColumn() string { return s.cols[s.table.TimestampIndex].Name }

// CountUndatedOf opens the table spec names, counts its rows that belong
// to no date, and closes it: for `planner check`, which has no Source.
func CountUndatedOf(ctx context.Context, cfg Config, spec TableSpec) (int64, error) {
	pc, err := cfg.PoolConfig()
	if err != nil {
		return 0, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return 0, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer pool.Close()
	s, err := newSource(ctx, pool, spec)
	if err != nil {
		return 0, err
	}
	return s.CountUndated(ctx)
}
