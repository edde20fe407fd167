package pgcoord

import (
	"math/rand/v2"
	"testing"

	"cloud.google.com/go/civil"
)

var (
	lastDay = civil.Date{Year: 9999, Month: 12, Day: 31}
	// edgeDays are the dates where a key derived from a date has broken or
	// could break: year 1 and 9999, the Unix epoch and the day before it
	// (a day number's sign), and BigQuery's partition range 1960..2159.
	edgeDays = []civil.Date{
		firstDay, {Year: 1, Month: 1, Day: 2}, {Year: 1969, Month: 12, Day: 31}, {Year: 1970, Month: 1, Day: 1},
		{Year: 1959, Month: 12, Day: 31}, {Year: 1960, Month: 1, Day: 1}, {Year: 2159, Month: 12, Day: 31},
		{Year: 2160, Month: 1, Day: 1}, {Year: 2038, Month: 1, Day: 19}, lastDay,
	}
)

// Every date of the contract (0001-01-01..9999-12-31) has a lock key that
// reads back as itself whether PostgreSQL reports it signed or, as
// pg_locks does, unsigned; keys are distinct and in date order, and no
// key outside the range reads back as a date. The notification naming a
// date's publish names exactly it.
func TestDayKeysRoundTripEveryDate(t *testing.T) {
	t.Parallel()
	if k := dayKey(lastDay); k != maxDayKey {
		t.Fatalf("key of %s = %d, want maxDayKey %d", lastDay, k, maxDayKey)
	}
	prev := int32(-1)
	q := &publishQueue{announced: queueClass("ready", "p.d.t")}
	for d := firstDay; !d.After(lastDay); d = d.AddDays(1) {
		k := dayKey(d)
		if k != prev+1 {
			t.Fatalf("key of %s = %d after %d: keys must be consecutive", d, k, prev)
		}
		prev = k
		for _, reported := range []int64{int64(k), int64(uint32(k))} {
			if got, ok := keyDay(reported); !ok || got != d {
				t.Fatalf("%s: key %d reads back as %s (ok %v)", d, reported, got, ok)
			}
		}
	}
	for _, n := range []int64{-1, maxDayKey + 1, 1 << 31, 1<<32 - 1, 4294248134} {
		if d, ok := keyDay(n); ok {
			t.Errorf("key %d reads back as %s; no date has it", n, d)
		}
	}
	rng := rand.New(rand.NewPCG(27, 1))
	days := append([]civil.Date{}, edgeDays...)
	for range 2000 {
		days = append(days, firstDay.AddDays(rng.IntN(maxDayKey+1)))
	}
	for _, d := range days {
		q.day = d
		others := []civil.Date{d.AddDays(-1), d.AddDays(1)}
		if !q.names(payload(q.announced, append(others, d))) {
			t.Fatalf("%s: the notification %q does not name it", d, payload(q.announced, []civil.Date{d}))
		}
		if q.names(payload(q.announced, others)) || q.names(payload(q.announced+1, []civil.Date{d})) {
			t.Fatalf("%s: named by a notification of other dates or another table", d)
		}
	}
}
