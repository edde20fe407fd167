package pgsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"github.com/jackc/pgx/v5"
)

// ChangedDay is what one UTC day of the timestamp column holds of the
// rows whose updated-at value is after a watermark.
type ChangedDay struct {
	// Rows changed after they may have been read: their updated-at value
	// is more than `fresh` after their timestamp (see ChangedDays).
	Changed int64
	// Rows counts every row found, fresh inserts included.
	Rows int64
}

// Changes finds the rows of a table changed since a watermark, through an
// index on its updated-at column.
type Changes struct {
	src    *Source
	column string
	// sql selects, per UTC day, the rows changed, the rows found and the
	// rows found, for rows with updated-at > $1.
	sql string
	// zone turns a timestamp-without-time-zone updated-at column's wall
	// clock into instants and back (the table's zone, else UTC).
	zone *time.Location
}

// ErrUpdatedAt means the updated-at column is missing or not a timestamp.
var ErrUpdatedAt = errors.New("unusable updated-at column")

// ErrNoUpdatedAtIndex means the updated-at column has no index whose first
// column it is, so each planner run would read the whole table.
var ErrNoUpdatedAtIndex = errors.New("no index on the updated-at column")

// Changes prepares reading the changes of the table through column, its
// updated-at column: a timestamptz, or a timestamp holding the table's
// zone's wall clock (SYNC_TIME_ZONE, else UTC). The column need not be
// synced. An error names the column and what is wrong with it.
func (s *Source) Changes(ctx context.Context, column string) (*Changes, error) {
	var oid uint32
	err := s.pool.QueryRow(ctx, `SELECT atttypid FROM pg_attribute
WHERE attrelid = $1::regclass AND attname = $2 AND attnum > 0 AND NOT attisdropped`, s.Name(), column).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w %q: %s has no such column", ErrUpdatedAt, column, s.Name())
	}
	if err != nil {
		return nil, fmt.Errorf("describe updated-at column %q of %s: %w", column, s.Name(), err)
	}
	if oid != oidTimestamptz && oid != oidTimestamp {
		return nil, fmt.Errorf("%w %q of %s: must be timestamptz or timestamp", ErrUpdatedAt, column, s.Name())
	}
	c := &Changes{src: s, column: column, zone: time.UTC}
	upd := pgx.Identifier{column}.Sanitize()
	instant := upd
	if oid == oidTimestamp {
		zone := "UTC"
		if s.spec.TimeZone != "" {
			zone = s.spec.TimeZone
		}
		c.zone, _ = time.LoadLocation(zone)
		instant = fmt.Sprintf("(%s AT TIME ZONE '%s')", upd, strings.ReplaceAll(zone, "'", "''"))
	}
	// The index serves "updated-at > $1" (the parameter is in the
	// column's own terms); the day, the comparison with the timestamp and
	// the bounds BigQuery can date are computed on the rows it finds.
	c.sql = fmt.Sprintf(`SELECT (%[3]s AT TIME ZONE 'UTC')::date AS day,
  count(*) FILTER (WHERE %[2]s > %[3]s + $2::interval) AS changed,
  count(*) AS rows
FROM %[4]s
WHERE %[1]s > $1 AND %[3]s >= $3 AND %[3]s < $4
GROUP BY 1`, upd, instant, s.instant, s.Name())
	return c, nil
}

// Indexed reports whether an index (any kind PostgreSQL can range-scan,
// in practice a btree) has the updated-at column as its first column.
func (c *Changes) Indexed(ctx context.Context) (bool, error) {
	var n int
	err := c.src.pool.QueryRow(ctx, `SELECT count(*) FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE i.indrelid = $1::regclass AND a.attname = $2 AND i.indisvalid AND i.indpred IS NULL AND am.amname = 'btree'`,
		c.src.Name(), c.column).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look for an index on %s.%s: %w", c.src.Name(), c.column, err)
	}
	return n > 0, nil
}

// ChangedDays lists, per UTC day of the timestamp column, the rows whose
// updated-at value is after since, and returns the database's clock as
// the read began: every row stamped before it minus the longest
// transaction was visible to the read. A row whose updated-at value is at
// most fresh after its own timestamp is counted in Rows but not in
// Changed: a loader reads a row only once its timestamp is older than the
// finish grace, so a row changed sooner than that after its timestamp was
// not read before the change (with fresh half that grace, clocks may
// differ by the other half); it is an insert, or an update that the day's
// reading will see anyway.
func (c *Changes) ChangedDays(ctx context.Context, since time.Time, fresh time.Duration) (map[civil.Date]ChangedDay, time.Time, error) {
	var readAt time.Time
	if err := c.src.pool.QueryRow(ctx, `SELECT now()`).Scan(&readAt); err != nil {
		return nil, time.Time{}, fmt.Errorf("read the clock of PostgreSQL: %w", err)
	}
	rows, err := c.src.pool.Query(ctx, c.sql, c.param(since), fmt.Sprintf("%d microseconds", fresh.Microseconds()), DatedFrom, DatedUntil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("find changed rows of %s by %s: %w", c.src.Name(), c.column, err)
	}
	defer rows.Close()
	out := map[civil.Date]ChangedDay{}
	for rows.Next() {
		var d time.Time
		var cd ChangedDay
		if err := rows.Scan(&d, &cd.Changed, &cd.Rows); err != nil {
			return nil, time.Time{}, fmt.Errorf("find changed rows of %s by %s: %w", c.src.Name(), c.column, err)
		}
		out[civil.DateOf(d)] = cd
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("find changed rows of %s by %s: %w", c.src.Name(), c.column, err)
	}
	return out, readAt.UTC(), nil
}

// Now is the database's clock.
func (c *Changes) Now(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := c.src.pool.QueryRow(ctx, `SELECT now()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("read the clock of PostgreSQL: %w", err)
	}
	return t.UTC(), nil
}

// param is t as the updated-at column holds it.
func (c *Changes) param(t time.Time) time.Time {
	if c.zone == time.UTC {
		return t.UTC()
	}
	w := t.In(c.zone)
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
}

// VersionModulus bounds each row's term of a day's version sum, so that
// the sum of a day of millions of rows stays within an int64 on both
// sides (BigQuery's INT64 and PostgreSQL's bigint).
const VersionModulus = 1_000_000_007

// DayVersions sums, per UTC day of the timestamp column in [from, to),
// each row's updated-at value as microseconds since the epoch (a
// timestamp column's wall clock read as UTC, as BigQuery's TIMESTAMP() of
// a DATETIME reads it) modulo VersionModulus; rows without a value add
// nothing. Equal keys with an updated-at value that moved give another
// sum: what the key fingerprint alone cannot see. BigQuery's side is
// bq.Warehouse.DayVersions.
func (c *Changes) DayVersions(ctx context.Context, from, to time.Time) (map[civil.Date]int64, error) {
	ts := pgx.Identifier{c.src.cols[c.src.table.TimestampIndex].Name}.Sanitize()
	sql := fmt.Sprintf(`SELECT (%[2]s AT TIME ZONE 'UTC')::date,
  COALESCE(sum((((extract(epoch FROM %[3]s) * 1000000)::bigint %% %[4]d) + %[4]d) %% %[4]d), 0)::bigint
FROM %[5]s WHERE %[1]s >= $1 AND %[1]s < $2%[6]s GROUP BY 1`,
		ts, c.src.instant, pgx.Identifier{c.column}.Sanitize(), VersionModulus, c.src.Name(), c.src.keepRange(3))
	lo, hi, keep, err := c.src.span(ctx, from, to)
	if err != nil {
		return nil, err
	}
	rows, err := c.src.pool.Query(ctx, sql, append([]any{lo, hi}, keep...)...)
	if err != nil {
		return nil, fmt.Errorf("sum %s of %s by day: %w", c.column, c.src.Name(), err)
	}
	defer rows.Close()
	out := map[civil.Date]int64{}
	for rows.Next() {
		var d time.Time
		var v int64
		if err := rows.Scan(&d, &v); err != nil {
			return nil, fmt.Errorf("sum %s of %s by day: %w", c.column, c.src.Name(), err)
		}
		out[civil.DateOf(d)] = v
	}
	return out, rows.Err()
}
