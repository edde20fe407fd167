package syncstate_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// A date's order is not decided by two machines' clocks: an operator whose
// clock is minutes slow re-opens a finished date (the re-opening counts),
// and one whose clock is minutes fast re-opens a date that a loader then
// finishes (the finish counts).
func TestReopeningsOrderedByEpochNotClocks(t *testing.T) {
	t.Parallel()
	b := testenv.BigQuery(t)
	now := time.Now().UTC()
	loader := syncstate.New(b.Client, b.Project, b.Dataset).WithClock(testenv.ClockAt(now))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := loader.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		skew time.Duration
		day  civil.Date
	}{{"operator clock slow", -10 * time.Minute, civil.Date{Year: 2025, Month: 2, Day: 1}},
		{"operator clock fast", 10 * time.Minute, civil.Date{Year: 2025, Month: 2, Day: 2}}} {
		operator := syncstate.New(b.Client, b.Project, b.Dataset).WithClock(testenv.ClockAt(now.Add(tc.skew)))
		read := func() syncstate.Entry {
			t.Helper()
			e, _, err := loader.Date(ctx, "t", tc.day)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		if err := loader.Append(ctx, syncstate.Entry{Table: "t", Date: tc.day, State: syncstate.StateFinished, IsFinished: true, Writer: "loader"}); err != nil {
			t.Fatal(err)
		}
		prev := read()
		if err := operator.Append(ctx, syncstate.Entry{Table: "t", Date: tc.day, State: syncstate.StateReopened,
			Writer: "operator", Epoch: prev.Epoch + 1}); err != nil {
			t.Fatal(err)
		}
		if e := read(); e.State != syncstate.StateReopened {
			t.Errorf("%s: after the re-opening the date shows %s", tc.name, e.State)
		}
		prev = read()
		if err := loader.Append(ctx, syncstate.Entry{Table: "t", Date: tc.day, State: syncstate.StateFinished, IsFinished: true,
			Writer: "loader", Epoch: prev.Epoch}); err != nil {
			t.Fatal(err)
		}
		if e := read(); !e.IsFinished {
			t.Errorf("%s: the rebuild's finish after the re-opening shows as %s", tc.name, e.State)
		}
	}
}

// `planner migrate` on a log made before the epoch column adds it (one
// ALTER TABLE … ADD COLUMN); the rows already there count as epoch 0, and
// a re-opening after the upgrade starts epoch 1.
func TestMigrateAddsTheNewColumns(t *testing.T) {
	t.Parallel()
	b := testenv.BigQuery(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old := bigquery.Schema{
		{Name: "table_name", Type: bigquery.StringFieldType, Required: true},
		{Name: "sync_date", Type: bigquery.DateFieldType, Required: true},
		{Name: "last_max_id", Type: bigquery.IntegerFieldType},
		{Name: "is_finished", Type: bigquery.BooleanFieldType, Required: true},
		{Name: "synced_at", Type: bigquery.TimestampFieldType, Required: true},
		{Name: "state", Type: bigquery.StringFieldType, Required: true},
		{Name: "last_created_at", Type: bigquery.TimestampFieldType},
		{Name: "last_id", Type: bigquery.IntegerFieldType},
		{Name: "rows_staged", Type: bigquery.IntegerFieldType},
		{Name: "source_rows", Type: bigquery.IntegerFieldType},
		{Name: "bigquery_rows", Type: bigquery.IntegerFieldType},
		{Name: "detail", Type: bigquery.StringFieldType},
		{Name: "writer", Type: bigquery.StringFieldType},
	}
	logTable := b.Client.Dataset(b.Dataset).Table(syncstate.LogTable)
	_ = logTable.Delete(ctx) // the test dataset may come migrated
	if err := logTable.Create(ctx, &bigquery.TableMetadata{Schema: old}); err != nil {
		t.Fatal(err)
	}
	st := syncstate.New(b.Client, b.Project, b.Dataset)
	day := civil.Date{Year: 2025, Month: 3, Day: 1}
	if err := st.Append(ctx, syncstate.Entry{Table: "t", Date: day, State: syncstate.StateFinished, IsFinished: true, Writer: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	meta, err := logTable.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := len(meta.Schema)
	if f := meta.Schema[n-2]; f.Name != "epoch" || f.Type != bigquery.IntegerFieldType {
		t.Fatalf("after migrate the log's last but one column is %s %s, want epoch INTEGER", f.Name, f.Type)
	}
	if f := meta.Schema[n-1]; f.Name != "last_key" || f.Type != bigquery.StringFieldType {
		t.Fatalf("after migrate the log's last column is %s %s, want last_key STRING", f.Name, f.Type)
	}
	e, _, err := st.Date(ctx, "t", day)
	if err != nil || !e.IsFinished || e.Epoch != 0 {
		t.Fatalf("the row from before the upgrade reads %+v, %v", e, err)
	}
	if err := st.Append(ctx, syncstate.Entry{Table: "t", Date: day, State: syncstate.StateReopened, Writer: "operator", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	if e, _, err := st.Date(ctx, "t", day); err != nil || e.State != syncstate.StateReopened || e.Epoch != 1 {
		t.Fatalf("after a re-opening the date reads %+v, %v", e, err)
	}
	// A position of a text key is kept in the column the upgrade added.
	key := "ß-key"
	at := time.Date(2025, 3, 1, 5, 0, 0, 0, time.UTC)
	if err := st.Append(ctx, syncstate.Entry{Table: "t", Date: day, State: syncstate.StateInProgress, Writer: "new", Epoch: 1,
		LastCreatedAt: at, LastKey: &key, RowsStaged: 1}); err != nil {
		t.Fatal(err)
	}
	if e, _, err := st.Date(ctx, "t", day); err != nil || e.LastKey == nil || *e.LastKey != key || !e.LastCreatedAt.Equal(at) {
		t.Fatalf("after a checkpoint of a text key the date reads %+v, %v", e, err)
	}
	if err := st.Migrate(ctx); err != nil { // again: nothing to do
		t.Fatal(err)
	}
}
