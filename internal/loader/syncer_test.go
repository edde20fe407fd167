package loader

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/pgsource"
)

func TestSyncDaysExactlyOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
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
	r := newRig(t)
	r.exec(`CREATE TABLE "Events" (event_id integer PRIMARY KEY, happened timestamp NOT NULL, what text);
CREATE INDEX ON "Events" (happened, event_id);
INSERT INTO "Events" SELECT g, TIMESTAMP '2024-09-01 00:00:00' + g * interval '20 minutes', 'e' || g FROM generate_series(1, 200) g`)
	s := r.openSpec(pgsource.TableSpec{Table: `public."Events"`, IDColumn: "event_id", TimestampColumn: "happened"}, "events", 25)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, day := range []time.Time{time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 9, 2, 0, 0, 0, 0, time.UTC), time.Date(2024, 9, 3, 0, 0, 0, 0, time.UTC)} {
		if got := r.syncAll(s, day); got != Finished {
			t.Fatalf("%s: outcome %v", day, got)
		}
		r.check(day)
	}
	total := int64(0)
	for _, d := range []int{1, 2, 3} {
		st, err := s.Warehouse.CountDay(ctx, time.Date(2024, 9, d, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Rows
	}
	if total != 200 {
		t.Fatalf("BigQuery holds %d rows, want 200", total)
	}
}

// Chunks that end early on their byte cap (wide rows) are not mistaken
// for the end of the day.
func TestByteCappedChunks(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	day := time.Date(2024, 3, 3, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 300, true)
	s := r.open(100)
	s.Source.MaxBytes = 4000 // a few dozen rows
	// One call: a capped chunk taken for the last would end the call early.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got, err := s.Sync(ctx, day, time.Now().Add(time.Hour)); err != nil || got != Finished {
		t.Fatalf("outcome = %v, %v; want finished in one call", got, err)
	}
	if n := r.check(day); n != 300 {
		t.Fatalf("source rows %d", n)
	}
}

// A timestamp-without-time-zone column holding Europe/Berlin wall-clock
// times, across a summer day and the autumn clock change: each row lands
// once, as the right instant, in the UTC day of that instant.
func TestStatedTimeZone(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.exec(`CREATE TABLE local_events (id integer PRIMARY KEY, at_local timestamp NOT NULL);
CREATE INDEX ON local_events (at_local, id);
INSERT INTO local_events SELECT g, TIMESTAMP '2024-07-01 00:00' + g * interval '10 minutes' FROM generate_series(1, 200) g;
INSERT INTO local_events SELECT 1000 + g, TIMESTAMP '2024-10-26 22:00' + g * interval '7 minutes' FROM generate_series(1, 100) g`)
	s := r.openSpec(pgsource.TableSpec{Table: "local_events", IDColumn: "id", TimestampColumn: "at_local", TimeZone: "Europe/Berlin"}, "local_events", 9)
	for _, d := range []time.Time{
		time.Date(2024, 6, 30, 0, 0, 0, 0, time.UTC), time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 7, 2, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 10, 26, 0, 0, 0, 0, time.UTC), time.Date(2024, 10, 27, 0, 0, 0, 0, time.UTC),
	} {
		if got := r.syncAll(s, d); got != Finished {
			t.Fatalf("%s: %v", d.Format(time.DateOnly), got)
		}
		r.check(d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Every row, as PostgreSQL's own conversion of the wall clock to an instant.
	want := map[int64]time.Time{}
	rows, err := r.pool.Query(ctx, `SELECT id, at_local AT TIME ZONE 'Europe/Berlin' FROM local_events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int32
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		want[int64(id)] = at.UTC()
	}
	got := r.bqRows("SELECT id, at_local FROM " + r.wh.DestRef())
	if len(got) != len(want) || len(want) != 300 {
		t.Fatalf("BigQuery has %d rows, PostgreSQL %d (want 300)", len(got), len(want))
	}
	for _, row := range got {
		id, at := row[0].(int64), row[1].(time.Time)
		if !at.Equal(want[id]) {
			t.Fatalf("row %d: BigQuery %s, PostgreSQL %s", id, at.UTC(), want[id])
		}
	}
}

// Loaders that have days ready at the same time publish them together
// (publish.Together): six loaders, one day each, all staged before
// any publishes, take fewer MERGE statements than days — each a write of
// the destination that BigQuery limits to 5 per 10 s — and every day
// arrives exactly once. A loader that leads publishes its own day with
// the others; the others learn that theirs is published and finish.
func TestLoadersPublishTogether(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: time.Second})
	first := time.Date(2024, 11, 1, 0, 0, 0, 0, time.UTC)
	const n = 6
	seedDays(t, r.pool, first, n, 50, false)
	// Every loader stops at its publish until all are there.
	var ready sync.WaitGroup
	ready.Add(n)
	loaders := make([]*Syncer, n)
	for i := range loaders {
		if i == 0 {
			loaders[i] = r.open(100) // makes the destination
		} else {
			loaders[i] = r.newSyncer(100, fmt.Sprintf("loader-%d", i))
		}
		once := sync.OnceFunc(ready.Done)
		setHook(loaders[i], func(point string) error {
			if point == "publish" {
				once()
				ready.Wait()
			}
			return nil
		})
	}
	before := proxy.Stats().DMLRun["MERGE"]
	outs := make([]Outcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, s := range loaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			outs[i], errs[i] = s.Sync(ctx, first.AddDate(0, 0, i), time.Now().Add(time.Hour))
		}()
	}
	wg.Wait()
	for i := range loaders {
		if errs[i] != nil || outs[i] != Finished {
			t.Fatalf("day %d: outcome %v, %v; want finished", i, outs[i], errs[i])
		}
		r.check(first.AddDate(0, 0, i))
	}
	st := proxy.Stats()
	merges := st.DMLRun["MERGE"] - before
	t.Logf("%d days published by %d MERGE statements; rate limited %v", n, merges, st.RateLimited)
	if merges < 1 || merges >= n {
		t.Fatalf("%d MERGE statements for %d days ready together, want fewer than %d", merges, n, n)
	}
}
