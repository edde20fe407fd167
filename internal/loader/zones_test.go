package loader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pgsource"
)

// A timestamp-without-time-zone key in zones whose clocks change at or
// next to a UTC midnight — found in PostgreSQL's zone database (see
// pgsource's TestZoneBoundsEveryTransition) — with a row every 20 minutes
// of wall clock for a day either side of the change: every UTC day the
// rows' instants fall on is synced and finished, and BigQuery then holds
// each row exactly once, at PostgreSQL's own instant, through the publish
// by load and through staging. Rows of the skipped or repeated stretch
// used to be read with the day before their instant's: in Asia/Jerusalem
// the day before was refused by load, published from staging without
// them and recorded finished, and the day itself finished without them
// too.
func TestClockChangesAtUTCMidnight(t *testing.T) {
	t.Parallel()
	cases := []struct {
		zone, change, what string
	}{
		{"Asia/Jerusalem", "2026-03-27", "02:00-02:59 skipped from 00:00 UTC"},
		{"Asia/Gaza", "2026-03-28", "02:00-02:59 skipped from 00:00 UTC"},
		{"Europe/Chisinau", "2026-10-25", "02:00-02:59 repeated from 00:00 UTC"},
		{"Pacific/Apia", "2011-12-30", "the whole 30th skipped from 10:00 UTC"},
		{"Pacific/Kiritimati", "1994-12-31", "the whole 31st skipped from 10:00 UTC"},
	}
	for _, c := range cases {
		for _, staged := range []bool{false, true} {
			name := c.zone + "/by_load"
			if staged {
				name = c.zone + "/staged"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := newRig(t)
				r.exec(fmt.Sprintf(`CREATE TABLE wall (id integer PRIMARY KEY, at_local timestamp NOT NULL);
CREATE INDEX ON wall (at_local, id);
INSERT INTO wall SELECT g, TIMESTAMP '%s' - interval '1 day' + g * interval '20 minutes' FROM generate_series(0, 215) g`, c.change))
				s := r.openSpec(pgsource.TableSpec{Table: "wall", IDColumn: "id", TimestampColumn: "at_local", TimeZone: c.zone}, "wall", 40)
				setNoDirect(s, staged)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				var first, last time.Time
				if err := r.pool.QueryRow(ctx, `SELECT date_trunc('day', min(at_local AT TIME ZONE $1) AT TIME ZONE 'UTC'),
  date_trunc('day', max(at_local AT TIME ZONE $1) AT TIME ZONE 'UTC') FROM wall`, c.zone).Scan(&first, &last); err != nil {
					t.Fatal(err)
				}
				for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
					if got := r.syncAll(s, d); got != Finished {
						t.Fatalf("%s (%s): %s: %v", c.zone, c.what, d.Format(time.DateOnly), got)
					}
					r.check(d)
				}
				r.sameInstants("wall", c.zone, 216)
			})
		}
	}
}
