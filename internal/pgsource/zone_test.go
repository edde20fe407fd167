package pgsource_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/testenv"
)

// transitionsSQL finds every transition of every zone in PostgreSQL's zone
// database from 1970 to 2037 (posix/ names are copies of the others):
// offsets compared a week apart, and each week whose offsets differ
// bisected to the second at which the offset changes. A week holding two
// changes is flagged (more): the test then fails rather than miss one.
const transitionsSQL = `
CREATE FUNCTION pg_temp.off(z text, s bigint) RETURNS interval LANGUAGE sql IMMUTABLE AS
  $$ SELECT (to_timestamp(s) AT TIME ZONE z) - (to_timestamp(s) AT TIME ZONE 'UTC') $$;
CREATE TEMP TABLE tr AS
WITH RECURSIVE z AS (SELECT name FROM pg_timezone_names WHERE name NOT LIKE 'posix/%'),
w AS (SELECT name, s AS lo, s + 604800 AS hi FROM z,
        generate_series(extract(epoch FROM timestamptz '1970-01-01 00:00+00')::bigint,
                        extract(epoch FROM timestamptz '2038-01-01 00:00+00')::bigint - 604800, 604800) s),
b AS (SELECT name, lo, hi, pg_temp.off(name, lo) AS before, hi AS week_end FROM w WHERE pg_temp.off(name, lo) <> pg_temp.off(name, hi)
  UNION ALL
  SELECT name, CASE WHEN pg_temp.off(name, m) = before THEN m ELSE lo END, CASE WHEN pg_temp.off(name, m) = before THEN hi ELSE m END, before, week_end
  FROM b, LATERAL (SELECT (lo + hi) / 2 AS m) x WHERE hi - lo > 1)
SELECT name AS zone, to_timestamp(hi) AS t, before, pg_temp.off(name, hi) AS after,
  pg_temp.off(name, hi) <> pg_temp.off(name, week_end) AS more
FROM b WHERE hi - lo = 1`

// wallsSQL lists, for each transition, the wall clocks where a day's
// bounds can go wrong — either side of the change in both offsets, the
// middle of a skipped or repeated stretch, and the wall clocks of the UTC
// midnights around it — each with the UTC day PostgreSQL's own conversion
// puts it in.
const wallsSQL = `
CREATE TEMP TABLE walls AS
SELECT zone, t, w, (w AT TIME ZONE zone AT TIME ZONE 'UTC')::date AS day
FROM tr,
  LATERAL (SELECT (t AT TIME ZONE 'UTC') + before AS u, (t AT TIME ZONE 'UTC') + after AS v,
                  date_trunc('day', t AT TIME ZONE 'UTC') AS m) x,
  LATERAL unnest(ARRAY[u - interval '1 microsecond', u, u + (v - u) / 2, v - interval '1 microsecond', v,
    m AT TIME ZONE 'UTC' AT TIME ZONE zone, (m + interval '1 day') AT TIME ZONE 'UTC' AT TIME ZONE zone,
    (m + interval '1 day') AT TIME ZONE 'UTC' AT TIME ZONE zone - interval '1 microsecond']) AS w`

// The wall-clock range a zoned wall-clock key's day is read from holds
// every wall clock PostgreSQL turns into an instant of that UTC day, for
// every transition of every zone of PostgreSQL's zone database from 1970
// to 2037 (about 30,000), among them the three that skip a whole day
// across a UTC midnight. The day's rows are then kept by their instant,
// so each row is in exactly one day. The plain range — the wall clocks of
// the day's two midnights, as pgbq read days before — misses rows at
// thousands of them.
func TestZoneBoundsEveryTransition(t *testing.T) {
	t.Parallel()
	_, pool := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, sql := range []string{transitionsSQL, wallsSQL} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	var n, more int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE more) FROM tr`).Scan(&n, &more); err != nil {
		t.Fatal(err)
	}
	if n < 25000 || more > 0 {
		t.Fatalf("%d transitions found, %d weeks with two: the search needs another look", n, more)
	}
	// The changes that skip a whole day across a UTC midnight are among them.
	for _, c := range []struct{ zone, at string }{
		{"Pacific/Apia", "2011-12-30 10:00+00"}, {"Pacific/Kiritimati", "1994-12-31 10:00+00"}, {"Pacific/Kwajalein", "1993-08-21 12:00+00"},
	} {
		var jump time.Duration
		if err := conn.QueryRow(ctx, `SELECT extract(epoch FROM after - before)::bigint * 1000000000 FROM tr WHERE zone = $1 AND t = $2::timestamptz`,
			c.zone, c.at).Scan(&jump); err != nil {
			t.Fatalf("%s at %s: %v", c.zone, c.at, err)
		}
		if jump != 24*time.Hour {
			t.Fatalf("%s at %s skips %s, want a day", c.zone, c.at, jump)
		}
	}
	check := func(bounds string) (total, missed int, examples []string) {
		t.Helper()
		rows, err := conn.Query(ctx, fmt.Sprintf(`WITH d AS (SELECT DISTINCT zone, day FROM walls),
bd AS (SELECT zone, day, lo, hi FROM d, LATERAL (%s) AS b(lo, hi))
SELECT count(*) OVER (), count(*) FILTER (WHERE NOT (w >= lo AND w < hi)) OVER (), zone, t::text, w::text, day::text, lo::text, hi::text
FROM walls JOIN bd USING (zone, day) ORDER BY NOT (w >= lo AND w < hi) DESC, zone, t LIMIT 5`, bounds))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var zone, at, w, day, lo, hi string
			if err := rows.Scan(&total, &missed, &zone, &at, &w, &day, &lo, &hi); err != nil {
				t.Fatal(err)
			}
			examples = append(examples, fmt.Sprintf("%s (change at %s): wall clock %s is an instant of %s, read from [%s, %s)", zone, at, w, day, lo, hi))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return total, missed, examples
	}
	total, missed, examples := check(pgsource.ZoneBoundsSQL("zone", "day::timestamp", "day::timestamp + interval '1 day'"))
	if missed > 0 {
		t.Fatalf("%d of %d wall clocks outside their day's range, e.g.:\n%s", missed, total, strings.Join(examples[:min(missed, 5)], "\n"))
	}
	t.Logf("%d transitions, %d wall clocks each in its day's range", n, total)
	// The test can tell: the plain range misses some.
	_, missed, examples = check(`SELECT day::timestamp AT TIME ZONE 'UTC' AT TIME ZONE zone, (day + 1)::timestamp AT TIME ZONE 'UTC' AT TIME ZONE zone`)
	if missed == 0 {
		t.Fatal("the plain wall-clock range of each day holds every wall clock too: the test cannot tell")
	}
	t.Logf("the plain range misses %d, e.g. %s", missed, examples[0])
}

// For a zoned wall-clock key, the rows without a date and the first day
// are told by the instant too: in Asia/Tokyo (LMT +09:18:59 in year 1) a
// wall clock of 0001-01-01 05:00 is an instant of year 0, so it has no
// date, while 12:00 that day is the table's first day.
func TestZonedEdgesOfTheDatedRange(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool, `CREATE TABLE wall (id integer PRIMARY KEY, at_local timestamp)`,
		`INSERT INTO wall VALUES (1, '0001-01-01 05:00'), (2, '0001-01-01 12:00'), (3, NULL), (4, '2024-05-01 00:30'), (5, '9999-12-31 23:00')`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: dsn}, pgsource.TableSpec{Table: "wall", IDColumn: "id", TimestampColumn: "at_local", TimeZone: "Asia/Tokyo"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n, err := src.CountUndated(ctx)
	if err != nil || n != 2 {
		t.Fatalf("rows without a date: %d (%v), want 2 (the NULL and year 0's instant)", n, err)
	}
	first, ok, err := src.FirstDay(ctx)
	if err != nil || !ok || !first.Equal(pgsource.DatedFrom) {
		t.Fatalf("first day %s (%v, %v), want 0001-01-01", first, ok, err)
	}
	for _, c := range []struct {
		day  time.Time
		rows int64
	}{{pgsource.DatedFrom, 1}, {time.Date(2024, 4, 30, 0, 0, 0, 0, time.UTC), 1}, {time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), 1}} {
		if got, err := src.CountDay(ctx, c.day); err != nil || got != c.rows {
			t.Fatalf("%s: %d rows (%v), want %d", c.day.Format(time.DateOnly), got, err, c.rows)
		}
	}
}
