package pgcoord_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/pgcoord"
	"github.com/pgbq/pgbq/internal/testenv"
)

// Dates announced in the publish queue — the edges (year 1 and 9999, the
// day before the Unix epoch, BigQuery's partition range 1960..2159) and a
// seeded sample of the whole range — are read back through pg_locks, by
// the claim every leader makes, as exactly those dates, and pg_locks then
// lists each claim under a key that reads back as its date.
func TestDayKeysThroughPgLocks(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := openQ(ctx, t, dsn)
	first := civil.Date{Year: 1, Month: 1, Day: 1}
	want := []civil.Date{first, {Year: 1969, Month: 12, Day: 31}, {Year: 1970, Month: 1, Day: 1},
		{Year: 1959, Month: 12, Day: 31}, {Year: 1960, Month: 1, Day: 1}, {Year: 2159, Month: 12, Day: 31},
		{Year: 2160, Month: 1, Day: 1}, {Year: 9999, Month: 12, Day: 31}}
	span := (civil.Date{Year: 9999, Month: 12, Day: 31}).DaysSince(first) + 1
	rng := rand.New(rand.NewPCG(27, 2))
	for range 300 {
		want = append(want, first.AddDays(rng.IntN(span)))
	}
	got, class, release, err := pgcoord.AnnounceAndClaim(ctx, src, "p.d.keys", want)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	byDate := func(a, b civil.Date) int { return a.Compare(b) }
	slices.SortFunc(want, byDate)
	want = slices.Compact(want)
	slices.SortFunc(got, byDate)
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %d dates %v…, announced %d %v…", len(got), got[:min(len(got), 5)], len(want), want[:5])
	}
	rows, err := pool.Query(ctx, `SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2
  AND classid::bigint = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, class)
	if err != nil {
		t.Fatal(err)
	}
	var claimed []civil.Date
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		d, ok := pgcoord.KeyDay(n)
		if !ok {
			t.Fatalf("pg_locks lists claim key %d, which no date has", n)
		}
		claimed = append(claimed, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(claimed, byDate)
	if !slices.Equal(claimed, want) {
		t.Fatalf("pg_locks lists %d claims, want %d", len(claimed), len(want))
	}
}
