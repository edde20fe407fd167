package pgsource

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Rows of a wall-clock key in a stated zone (SYNC_TIME_ZONE) belong to the
// UTC day of their instant, as PostgreSQL converts them (`ts AT TIME ZONE
// zone`): that instant is what travels to BigQuery and decides the row's
// partition. The conversion is not monotonic: a wall clock in the hour a
// clock change skipped takes the offset from before the change (02:20 in
// Europe/Berlin on 2026-03-29 is the instant of 03:20), and a repeated
// hour takes the offset from after it. So no single wall-clock range is
// exactly a UTC day next to a change: in Asia/Jerusalem on 2026-03-27 the
// skipped 02:00-02:59 begins at 00:00 UTC and its rows are instants of the
// 27th with wall clocks before the 27th's first wall clock, and where a
// change skips a whole day across a UTC midnight (Pacific/Apia
// 2011-12-30, Pacific/Kiritimati 1994-12-31, Pacific/Kwajalein 1993-08-21)
// a day's rows lie in two separate wall-clock stretches.
//
// A query of the rows of [from, to) therefore reads a wall-clock range the
// (timestamp, id) index serves and that holds every such row — from plus
// the smallest offset in effect near the range to to plus the largest
// (zoneBoundsSQL), which is exactly the day's range away from clock
// changes — and keeps the rows whose instant is in [from, to). Each row is
// then in exactly one UTC day, whatever the zone does. The offsets come
// from PostgreSQL, never from Go's zone database, so the two can differ in
// version without losing rows.
//
// PostgreSQL's zone database is the truth, at the time of the read: when
// it is updated (a new tzdata release changing a zone's past or future
// rules), a stored wall clock converts to another instant from then on.
// Days synced before keep the instants they were synced with; their rows
// may now belong to another UTC day, which `planner verify` and the
// planner's audit of finished dates show as differing counts, and
// `planner resync` of those dates (both days) brings them to the new
// conversion. pgbq does not re-sync them by itself.

// zoneBoundsSQL is the wall-clock range [lo, hi) holding every wall clock
// that zone turns into an instant in [from, to) (zone a text, from and to
// timestamps holding UTC wall clocks, at most a few days apart): from
// plus the smallest offset in effect from 26 hours before from until to,
// to plus the largest, offsets sampled hourly. A wall clock is
// its instant plus either the offset in effect then or, in a skipped
// stretch, the offset just before the change that began it, less than
// 26 hours earlier (the longest skip, a whole day). No zone keeps an
// offset for less than an hour; TestZoneBoundsEveryTransition checks
// this against every transition of every zone from 1970 to 2037.
func zoneBoundsSQL(zone, from, to string) string {
	return fmt.Sprintf(`SELECT (%[2]s) + min(o), (%[3]s) + max(o)
FROM generate_series(((%[2]s) - interval '26 hours') AT TIME ZONE 'UTC', (%[3]s) AT TIME ZONE 'UTC', interval '1 hour') AS g(t),
  LATERAL (SELECT (g.t AT TIME ZONE %[1]s) - (g.t AT TIME ZONE 'UTC') AS o) AS x`, zone, from, to)
}

var boundsSQL = zoneBoundsSQL("$1::text", "$2::timestamp", "$3::timestamp")

// maxBoundedSpan is the longest [from, to) whose wall-clock range is
// asked of PostgreSQL; longer ones (the whole table, many days at once)
// take a margin of a day on each side, more than any zone's offset.
const maxBoundedSpan = 72 * time.Hour

// span is what a query of the rows whose instant lies in [from, to) binds:
// the wall-clock range [lo, hi) the timestamp column is compared with,
// and keep, the arguments of the instant condition (keepRange), set for a
// wall clock in a stated zone only.
func (s *Source) span(ctx context.Context, from, to time.Time) (lo, hi time.Time, keep []any, err error) {
	if !s.wallKey {
		return s.param(from), s.param(to), nil, nil
	}
	keep = []any{from, to}
	if to.Sub(from) > maxBoundedSpan {
		return wall(from).Add(-24 * time.Hour), wall(to).Add(24 * time.Hour), keep, nil
	}
	k := [2]time.Time{from, to}
	s.bounds.mu.Lock()
	b, ok := s.bounds.m[k]
	s.bounds.mu.Unlock()
	if ok {
		return b[0], b[1], keep, nil
	}
	if err := s.pool.QueryRow(ctx, boundsSQL, s.spec.TimeZone, wall(from), wall(to)).Scan(&lo, &hi); err != nil {
		return time.Time{}, time.Time{}, nil, fmt.Errorf("wall-clock range of %s from %s to %s in %s: %w",
			s.Name(), from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), s.spec.TimeZone, err)
	}
	s.bounds.mu.Lock()
	if len(s.bounds.m) >= 4096 { // a back-fill's days: forget the old ones
		s.bounds.m = nil
	}
	if s.bounds.m == nil {
		s.bounds.m = map[[2]time.Time]([2]time.Time){}
	}
	s.bounds.m[k] = [2]time.Time{lo, hi}
	s.bounds.mu.Unlock()
	return lo, hi, keep, nil
}

// wallBounds caches span's answers by [from, to).
type wallBounds struct {
	mu sync.Mutex
	m  map[[2]time.Time][2]time.Time
}

// wall is t's UTC wall clock, as a timestamp-without-time-zone parameter.
func wall(t time.Time) time.Time {
	u := t.UTC()
	return time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), u.Minute(), u.Second(), u.Nanosecond(), time.UTC)
}

// keepRange is the condition that keeps the rows whose instant is in
// [$n, $n+1), for a wall clock in a stated zone; "" otherwise.
func (s *Source) keepRange(n int) string {
	if !s.wallKey {
		return ""
	}
	return fmt.Sprintf(" AND %s >= $%d AND %s < $%d", s.instant, n, s.instant, n+1)
}
