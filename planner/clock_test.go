package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/testenv"
)

// A timestamp-without-time-zone key in America/New_York (SYNC_TIME_ZONE),
// with the clock pinned just after a clock change of that zone: which UTC
// days are closed, synced and finished, and what the planner plans next,
// follow the pinned clock and not the zone's wall clock or the machine's.
func TestClockAcrossDSTChange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		first time.Time // the first row; one every 10 minutes until now
		now   time.Time
		// finished: days closed and complete; open: days not closed, whose
		// rows of the last hour (the finish grace) wait; plan: the dry run
		// after the sync.
		finished, open int
		lastClosed     string
		plan           []string
	}{
		// Spring forward: 2026-03-08 02:00 EST became 03:00 EDT (07:00
		// UTC). At 00:30 UTC on the 9th, the 8th is within its grace.
		{"spring", time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 0, 30, 0, 0, time.UTC),
			2, 2, "2026-03-07", []string{"2026-03-08  unfinished", "2026-03-09  today"}},
		// Fall back: 2026-11-01 02:00 EDT became 01:00 EST (06:00 UTC), so
		// 01:00-02:00 local happened twice. At 23:59 UTC that day the
		// 31st is closed.
		{"autumn", time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 23, 59, 0, 0, time.UTC),
			2, 1, "2026-10-31", []string{"2026-11-01  today"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := testenv.ClockAt(tc.now)
			dsn, pool := testenv.PG(t)
			n := int(tc.now.Sub(tc.first) / (10 * time.Minute))
			testenv.Exec(t, pool,
				`CREATE TABLE local_events (id integer PRIMARY KEY, at_local timestamp NOT NULL)`,
				`CREATE INDEX ON local_events (at_local, id)`,
				fmt.Sprintf(`INSERT INTO local_events SELECT g, (TIMESTAMPTZ '%s' + g * interval '10 minutes') AT TIME ZONE 'America/New_York'
FROM generate_series(0, %d) g`, tc.first.Format(time.RFC3339), n))
			b := testenv.BigQuery(t)
			env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
				"SYNC_TABLE": "local_events", "SYNC_TIMESTAMP_COLUMN": "at_local", "SYNC_TIME_ZONE": "America/New_York",
				"SYNC_CHUNK_SIZE": "100", "PLANNER_IN_FLIGHT": "0s"}
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			for d := tc.first; !d.After(tc.now); d = d.AddDate(0, 0, 1) {
				if err := runLoaderOnce(ctx, env, clock, d); err != nil {
					t.Fatalf("sync %s: %v", d.Format(time.DateOnly), err)
				}
			}
			planner := func(args ...string) string {
				t.Helper()
				var out bytes.Buffer
				if err := run(ctx, args, envconfig.MapLookuper(env), &out, io.Discard, app.WithClock(clock)); err != nil {
					t.Fatalf("planner %v: %v\n%s", args, err, out.String())
				}
				return out.String()
			}
			// Rows after now minus the hour of grace wait for the next run:
			// rows may still commit late below them. (The pinned clock has
			// moved on by microseconds, so a row exactly an hour old is in.)
			rows, synced := n+1, int(tc.now.Add(-time.Hour).Sub(tc.first)/(10*time.Minute))+1
			if out := planner("status", "--verify"); !strings.Contains(out, fmt.Sprintf("status: dates=%d finished=%d source_rows=%d bigquery_rows=%d duplicates=0 mismatched=%d",
				tc.open+tc.finished, tc.finished, rows, synced, tc.open)) {
				t.Fatalf("status:\n%s", out)
			}
			if out := planner("verify", "--to", tc.lastClosed); !strings.Contains(out, fmt.Sprintf("verify: dates=%d mismatched=0", tc.finished)) {
				t.Fatalf("verify:\n%s", out)
			}
			out := planner("--dry-run")
			for _, w := range append(tc.plan, fmt.Sprintf("plan: %d dates", len(tc.plan))) {
				if !strings.Contains(out, w) {
					t.Fatalf("dry run lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
