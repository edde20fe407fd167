package loader

import (
	"context"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/syncstate"
)

func TestSyncDaysExactlyOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, 70)
	first := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, first, 3, 250, false)
	s := r.open(70)
	for d := 0; d < 3; d++ {
		day := first.AddDate(0, 0, d)
		if got := r.syncAll(s, day); got != Finished {
			t.Fatalf("day %d outcome %v, want finished", d, got)
		}
		if n := r.check(day); n != 250 {
			t.Fatalf("source day has %d rows, want 250", n)
		}
		if e := r.entry(day); !e.IsFinished || e.SourceRows != 250 || e.BigQueryRows != 250 || e.LastMaxID != int64(250*(d+1)) {
			t.Fatalf("sync_control entry = %+v", e)
		}
	}
}

// A timestamp without time zone key column is read as UTC and lands in a
// DATETIME-partitioned table; ids here are integer, not bigint.
func TestTimestampWithoutTimeZoneKey(t *testing.T) {
	t.Parallel()
	r := newRig(t, 25)
	r.exec(`CREATE TABLE "Events" (event_id integer PRIMARY KEY, happened timestamp NOT NULL, what text);
CREATE INDEX ON "Events" (happened, event_id);
INSERT INTO "Events" SELECT g, TIMESTAMP '2024-09-01 00:00:00' + g * interval '20 minutes', 'e' || g FROM generate_series(1, 200) g`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: r.dsn}, pgsource.TableSpec{Table: `public."Events"`, IDColumn: "event_id", TimestampColumn: "happened"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	wh, err := bq.NewWarehouse(r.bq.Client, r.bq.Config(), "events", src.Table())
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.EnsureDestination(ctx); err != nil {
		t.Fatal(err)
	}
	st := syncstate.New(r.bq.Client, r.bq.Project, r.bq.Dataset)
	if err := st.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	enc, err := parquetenc.New(src.Table())
	if err != nil {
		t.Fatal(err)
	}
	s := &Syncer{Source: src, Warehouse: wh, State: st, Encoder: enc, Table: "events", ChunkSize: 25, Grace: time.Hour, Writer: "test"}
	r.src, r.wh = src, wh
	for _, day := range []time.Time{time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 9, 2, 0, 0, 0, 0, time.UTC), time.Date(2024, 9, 3, 0, 0, 0, 0, time.UTC)} {
		if got := r.syncAll(s, day); got != Finished {
			t.Fatalf("%s: outcome %v", day, got)
		}
		r.check(day)
	}
	total := int64(0)
	for _, d := range []int{1, 2, 3} {
		st, err := wh.CountDay(ctx, time.Date(2024, 9, d, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Rows
	}
	if total != 200 {
		t.Fatalf("BigQuery holds %d rows, want 200", total)
	}
}
