package planner

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// A planner run drops the staging tables of the table's finished dates and
// no other: a date in any other state — and a date finished, then
// re-opened, whose staging is its new generation — keeps its table, and so
// do another destination's tables whose names share the prefix.
func TestRunDropsOnlyFinishedDatesStaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := f.bq
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	june := func(d int) civil.Date { return civil.Date{Year: 2024, Month: 6, Day: d} }
	at := time.Date(2024, 6, 6, 1, 0, 0, 0, time.UTC)
	// One date in each state a date can be in; only the first is finished.
	states := []syncstate.State{syncstate.StateFinished, syncstate.StatePlanned, syncstate.StateInProgress,
		syncstate.StatePublished, syncstate.StateMismatch, syncstate.StateFailed, syncstate.StateReopened,
		syncstate.StateQuarantined}
	var entries []syncstate.Entry
	for i, st := range states {
		entries = append(entries, syncstate.Entry{Table: "events", Date: june(i + 1), State: st,
			IsFinished: st == syncstate.StateFinished, SyncedAt: at})
	}
	// June 20: finished, then re-opened (a new epoch); June 21: no entry.
	reopened := june(20)
	entries = append(entries,
		syncstate.Entry{Table: "events", Date: reopened, State: syncstate.StateFinished, IsFinished: true, SyncedAt: at},
		syncstate.Entry{Table: "events", Date: reopened, State: syncstate.StateReopened, SyncedAt: at.Add(time.Minute), Epoch: 1})
	if err := f.state.Append(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	ds := b.Client.Dataset(b.Config().StagingDataset)
	var names []string
	for i := range states {
		names = append(names, "pgbq_stage_events_"+june(i+1).In(time.UTC).Format("20060102"))
	}
	names = append(names, "pgbq_stage_events_20240620", "pgbq_stage_events_20240621",
		"pgbq_stage_events_x_20240601", // destination events_x, not events
		"pgbq_stage_events_2024060")    // no date
	for _, n := range names {
		if err := ds.Table(n).Create(ctx, &bigquery.TableMetadata{Schema: bigquery.Schema{{Name: "id", Type: bigquery.IntegerFieldType}}}); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := f.planner.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, n := range names {
		_, err := ds.Table(n).Metadata(ctx)
		switch {
		case err == nil:
			kept = append(kept, n)
		case !bq.IsStatus(err, http.StatusNotFound):
			t.Fatal(err)
		}
	}
	want := slices.Delete(slices.Clone(names), 0, 1) // all but the finished date's
	if !slices.Equal(kept, want) {
		t.Fatalf("staging tables after the run: %v, want %v (only the finished date's dropped)", kept, want)
	}
	// The next run finds nothing more to drop.
	dropped, left, err := f.planner.DropFinishedStaging(ctx)
	if err != nil || dropped != 0 || left != 0 {
		t.Fatalf("second run: dropped %d, left %d, %v; want 0, 0, nil", dropped, left, err)
	}
}
