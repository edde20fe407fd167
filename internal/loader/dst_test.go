package loader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pgsource"
)

// A timestamp-without-time-zone key in Europe/Berlin on the days its
// clocks change — 2026-03-29, when 02:00-02:59 is skipped (PostgreSQL
// maps 02:20 to the same instant as 03:20), and 2026-10-25, when
// 02:00-02:59 repeats — with a row every 10 minutes and chunks of 3: every
// row lands once, as PostgreSQL's instant, whether the date runs through
// or the loader dies in the middle of the day (in and around the changed
// hour) and resumes.
func TestClockChangeDays(t *testing.T) {
	t.Parallel()
	type crash struct {
		point string
		nth   int
	}
	for _, day := range []string{"2026-03-29", "2026-10-25"} {
		for _, c := range []crash{{}, {"checkpointed", 2}, {"checkpointed", 3}, {"checkpointed", 4}, {"loaded", 5}} {
			t.Run(fmt.Sprintf("%s/%s%d", day, c.point, c.nth), func(t *testing.T) {
				t.Parallel()
				r := newRig(t)
				// 00:30 to 04:50 local: 27 rows, a few on the UTC day before.
				r.exec(fmt.Sprintf(`CREATE TABLE wall (id integer PRIMARY KEY, at_local timestamp NOT NULL);
CREATE INDEX ON wall (at_local, id);
INSERT INTO wall SELECT g, TIMESTAMP '%s 00:20' + g * interval '10 minutes' FROM generate_series(1, 27) g`, day))
				s := r.openSpec(pgsource.TableSpec{Table: "wall", IDColumn: "id", TimestampColumn: "at_local", TimeZone: "Europe/Berlin"}, "wall", 3)
				d, err := time.Parse(time.DateOnly, day)
				if err != nil {
					t.Fatal(err)
				}
				if c.point != "" {
					// Crashes between loads are of the staging path: a
					// day published by load may end before them.
					setNoDirect(s, true)
					r.crash(s, d, c.point, c.nth)
				}
				for _, d := range []time.Time{d.AddDate(0, 0, -1), d} {
					if got := r.syncAll(s, d); got != Finished {
						t.Fatalf("%s: %v", d.Format(time.DateOnly), got)
					}
					r.check(d)
				}
				r.sameInstants("wall", "Europe/Berlin", 27)
			})
		}
	}
}

// sameInstants asserts that BigQuery holds table's n rows, each once and
// with PostgreSQL's own conversion of its wall clock in zone.
func (r *rig) sameInstants(table, zone string, n int) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := map[int64]time.Time{}
	rows, err := r.pool.Query(ctx, fmt.Sprintf(`SELECT id, at_local AT TIME ZONE $1 FROM %s`, table), zone)
	if err != nil {
		r.t.Fatal(err)
	}
	for rows.Next() {
		var id int32
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			r.t.Fatal(err)
		}
		want[int64(id)] = at.UTC()
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	got := r.bqRows("SELECT id, at_local FROM " + r.wh.DestRef())
	if len(got) != n || len(want) != n {
		r.t.Fatalf("BigQuery has %d rows, PostgreSQL %d (want %d)", len(got), len(want), n)
	}
	seen := map[int64]bool{}
	for _, row := range got {
		id, at := row[0].(int64), row[1].(time.Time)
		if seen[id] {
			r.t.Fatalf("row %d is in BigQuery twice", id)
		}
		seen[id] = true
		if !at.Equal(want[id]) {
			r.t.Fatalf("row %d: BigQuery %s, PostgreSQL %s", id, at.UTC(), want[id])
		}
	}
}
