package loader

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/pgsource"
)

func (r *rig) bqRows(sql string) [][]bigquery.Value {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := bq.Rows[[]bigquery.Value](r.wh.Query(ctx, sql))
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// A column added to the source appears in BigQuery without a manual step;
// older dates hold NULL in it; a column added between two chunks of a date
// leaves every value in its own column; a dropped or retyped column stops
// the sync and says what changed.
func TestSchemaEvolution(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.exec(`CREATE TABLE ev (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, a text);
INSERT INTO ev SELECT g, TIMESTAMPTZ '2024-04-01' + g * interval '1 hour', 'a' || g FROM generate_series(1, 20) g`)
	s := r.openSpec(pgsource.TableSpec{Table: "ev", IDColumn: "id", TimestampColumn: "created_at"}, "ev", 4)
	day := func(d int) time.Time { return time.Date(2024, 4, d, 0, 0, 0, 0, time.UTC) }
	if got := r.syncAll(s, day(1)); got != Finished {
		t.Fatalf("day 1: %v", got)
	}

	// A column added; day 2 has values in it.
	r.exec(`ALTER TABLE ev ADD COLUMN b text;
INSERT INTO ev SELECT g, TIMESTAMPTZ '2024-04-02' + (g - 100) * interval '1 hour', 'a' || g, 'b' || g FROM generate_series(101, 110) g`)
	if got := r.syncAll(s, day(2)); got != Finished {
		t.Fatalf("day 2: %v", got)
	}
	r.wh = s.Warehouse
	r.check(day(2))

	// Another column added between two chunks of day 3, with a default
	// that PostgreSQL gives the rows already there.
	r.exec(`INSERT INTO ev SELECT g, TIMESTAMPTZ '2024-04-03' + (g - 200) * interval '1 hour', 'a' || g, 'b' || g FROM generate_series(201, 214) g`)
	// On the staging path: a day published by load ends before its
	// second checkpoint (its loads now name the schema, so it is not
	// refused and left to staging).
	setNoDirect(s, true)
	r.crash(s, day(3), "checkpointed", 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.exec(`ALTER TABLE ev ADD COLUMN c integer DEFAULT 7`)
	if got := r.syncAll(s, day(3)); got != Finished {
		t.Fatalf("day 3: %v", got)
	}
	r.wh = s.Warehouse
	r.check(day(3))

	var want [][]bigquery.Value
	rows, err := r.pool.Query(ctx, `SELECT id, a, b, c FROM ev ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var a string
		var b *string
		var c *int32
		if err := rows.Scan(&id, &a, &b, &c); err != nil {
			t.Fatal(err)
		}
		row := []bigquery.Value{id, a, nil, nil}
		if id > 100 { // days 2 and 3 were synced after b existed
			row[2] = *b
		}
		if id > 200 { // day 3 was synced after c existed
			row[3] = int64(*c)
		}
		want = append(want, row)
	}
	got := r.bqRows(fmt.Sprintf("SELECT id, a, b, c FROM %s ORDER BY id", r.wh.DestRef()))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("BigQuery differs (-want +got):\n%s", diff)
	}

	// Dropping a column stops the sync and says what to do.
	r.exec(`ALTER TABLE ev DROP COLUMN a`)
	_, err = s.Sync(ctx, day(4), time.Now().Add(time.Hour))
	if !errors.Is(err, pgsource.ErrSchemaChanged) || !strings.Contains(err.Error(), `column "a" was dropped or renamed`) ||
		!strings.Contains(err.Error(), "SYNC_DEST_TABLE") {
		t.Fatalf("after DROP COLUMN: %v", err)
	}
}

func TestRetypedColumnStops(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.exec(`CREATE TABLE rt (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, n integer);
INSERT INTO rt VALUES (1, '2024-04-01 01:00:00+00', 5)`)
	s := r.openSpec(pgsource.TableSpec{Table: "rt", IDColumn: "id", TimestampColumn: "created_at"}, "rt", 10)
	r.exec(`ALTER TABLE rt ALTER COLUMN n TYPE text`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.Sync(ctx, time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(time.Hour))
	if !errors.Is(err, pgsource.ErrSchemaChanged) || !strings.Contains(err.Error(), `column "n" changed type from integer to text`) {
		t.Fatalf("after ALTER TYPE: %v", err)
	}
}
