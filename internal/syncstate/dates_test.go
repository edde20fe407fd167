package syncstate_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// State rows round-trip the edges of the dates a message may name — year
// 1, the day before the Unix epoch, BigQuery's partition range, 9999-12-31
// — and 0001-01-01, the date a table's pause and resume rows are kept
// under, is a date like the others: a finished 0001-01-01 and a pause
// (then a resume, and a re-opening of the date) each read back as
// themselves, whichever was written last.
func TestStateRowsOfEveryEra(t *testing.T) {
	t.Parallel()
	b := testenv.BigQuery(t)
	st := syncstate.New(b.Client, b.Project, b.Dataset)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const table = "eras"
	days := []civil.Date{{Year: 1, Month: 1, Day: 1}, {Year: 1, Month: 1, Day: 2}, {Year: 1959, Month: 12, Day: 31},
		{Year: 1969, Month: 12, Day: 31}, {Year: 1970, Month: 1, Day: 1}, {Year: 2160, Month: 1, Day: 1}, {Year: 9999, Month: 12, Day: 31}}
	stamp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(e syncstate.Entry) {
		t.Helper()
		stamp = stamp.Add(time.Second)
		e.Table, e.SyncedAt, e.Writer = table, stamp, "test"
		if err := st.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range days {
		add(syncstate.Entry{Date: d, State: syncstate.StateFinished, IsFinished: true, SourceRows: int64(i)})
	}
	paused := func(want bool) {
		t.Helper()
		got, _, err := st.Paused(ctx, table)
		if err != nil || got != want {
			t.Fatalf("paused = %v (%v), want %v", got, err, want)
		}
	}
	dates := func() {
		t.Helper()
		all, err := st.Latest(ctx, table)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range days {
			e, ok, err := st.Date(ctx, table, d)
			if err != nil || !ok || !e.IsFinished || e.SourceRows != int64(i) || e.Date != d {
				t.Fatalf("%s reads back as %+v (ok %v, %v)", d, e, ok, err)
			}
			if all[d].State != syncstate.StateFinished {
				t.Fatalf("%s in Latest: %+v", d, all[d])
			}
		}
		if len(all) != len(days) {
			t.Fatalf("Latest holds %d dates, want %d", len(all), len(days))
		}
		first, ok, err := st.FirstDate(ctx, table)
		if err != nil || !ok || first != days[0] {
			t.Fatalf("first date %s (%v, %v), want %s", first, ok, err, days[0])
		}
	}
	paused(false)
	dates()
	add(syncstate.Entry{Date: syncstate.ControlDate, State: syncstate.StatePaused})
	paused(true)
	dates()
	// A re-opening of the date 0001-01-01 leaves the pause alone.
	add(syncstate.Entry{Date: days[0], State: syncstate.StateReopened})
	add(syncstate.Entry{Date: days[0], State: syncstate.StateFinished, IsFinished: true, SourceRows: 0})
	paused(true)
	dates()
	add(syncstate.Entry{Date: syncstate.ControlDate, State: syncstate.StateResumed})
	paused(false)
	dates()
}
