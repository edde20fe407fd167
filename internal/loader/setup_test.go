package loader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

const activityLogsDDL = `
CREATE TABLE activity_logs (
  id bigint PRIMARY KEY,
  user_id bigint NOT NULL,
  action text NOT NULL,
  path varchar(200),
  payload jsonb,
  ip inet,
  amount numeric(12,2),
  score double precision,
  ok boolean,
  small smallint,
  qty integer,
  uid uuid,
  day date,
  local_ts timestamp,
  doc json,
  created_at timestamptz NOT NULL
);
CREATE INDEX activity_logs_created_at_id ON activity_logs (created_at, id);`

// seedDays inserts rows for days starting at first: perDay rows each,
// ids rising with time (or shuffled when shuffled is true).
func seedDays(t testing.TB, pool *pgxpool.Pool, first time.Time, days, perDay int, shuffled bool) {
	t.Helper()
	idExpr := "g"
	if shuffled {
		// A bijection on 1..n that does not follow time.
		idExpr = fmt.Sprintf("((g * 7919) %% %d) + 1", days*perDay+1)
	}
	testenv.Exec(t, pool, fmt.Sprintf(`
INSERT INTO activity_logs
SELECT %[1]s, g %% 1000, 'act' || (g %% 7), '/p/' || g,
       jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g %% 3)),
       ('10.0.' || (g %% 256) || '.' || (g %% 100))::inet,
       (g %% 100000) / 100.0, g / 3.0, g %% 2 = 0, (g %% 30000)::smallint, g::int,
       md5(g::text)::uuid, DATE '2020-01-01' + (g %% 1000), TIMESTAMP '2021-06-01 12:00:00.123456' + g * interval '1 second',
       json_build_object('k', g),
       TIMESTAMPTZ '%[2]s' + ((g - 1) / %[3]d) * interval '1 day' + ((g - 1) %% %[3]d) * (interval '86399 seconds' / %[3]d)
FROM generate_series(1, %[4]d) g`, idExpr, first.Format(time.RFC3339), perDay, days*perDay))
	testenv.Exec(t, pool, `UPDATE activity_logs SET payload = NULL, ip = NULL, amount = NULL WHERE id % 97 = 0`, `ANALYZE activity_logs`)
}

// dropJSON drops activity_logs' JSON columns (after seedDays filled them):
// a table with a JSON column is never published by load (Parquet cannot
// fill a JSON column: bq.Warehouse.ByLoad), so the tests of that path
// use the table without them.
func (r *rig) dropJSON() {
	r.t.Helper()
	testenv.Exec(r.t, r.pool, `ALTER TABLE activity_logs DROP COLUMN payload, DROP COLUMN doc`)
}

type rig struct {
	t      testing.TB
	pool   *pgxpool.Pool
	dsn    string
	bq     testenv.BQ
	state  *syncstate.Store
	src    *pgsource.Source
	wh     *bq.Warehouse
	syncer *Syncer
}

func newRig(t testing.TB) *rig {
	t.Helper()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool, activityLogsDDL)
	return &rig{t: t, pool: pool, dsn: dsn, bq: testenv.BigQuery(t)}
}

// open builds the syncer for activity_logs once it exists (as the binary does at start).
func (r *rig) open(chunk int) *Syncer {
	return r.openSpec(pgsource.TableSpec{Table: "activity_logs", IDColumn: "id", TimestampColumn: "created_at"}, "activity_logs", chunk)
}

// openSpec builds the syncer of any source table into dest.
func (r *rig) openSpec(spec pgsource.TableSpec, dest string, chunk int) *Syncer {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: r.dsn}, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	wh, err := bq.NewWarehouse(r.bq.Client, r.bq.Config(), dest, src.Table())
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.EnsureDestination(ctx); err != nil {
		t.Fatal(err)
	}
	clock := testenv.Clock(t)
	st := syncstate.New(r.bq.Client, r.bq.Project, r.bq.Dataset).WithClock(clock)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	enc, err := parquetenc.New(src.Table())
	if err != nil {
		t.Fatal(err)
	}
	r.src, r.wh, r.state = src, wh, st
	r.syncer = &Syncer{Source: src, Warehouse: wh, State: st, Encoder: enc, Table: dest,
		ChunkSize: chunk, Grace: time.Hour, Writer: "test", Now: clock}
	return r.syncer
}

// syncAll syncs day until it is no longer Continue.
func (r *rig) syncAll(s *Syncer, day time.Time) Outcome {
	r.t.Helper()
	for i := 0; i < 1000; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
		cancel()
		if err != nil {
			r.t.Fatalf("sync %s: %v", day.Format(time.DateOnly), err)
		}
		if out != Continue {
			return out
		}
	}
	r.t.Fatalf("sync %s never ended", day.Format(time.DateOnly))
	return 0
}

// check asserts that the destination holds every source row of day exactly once.
func (r *rig) check(day time.Time) int64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, err := r.src.CountDay(ctx, day)
	if err != nil {
		r.t.Fatal(err)
	}
	got, err := r.wh.CountDay(ctx, day)
	if err != nil {
		r.t.Fatal(err)
	}
	if got.Rows != src || got.DistinctIDs != src {
		r.t.Fatalf("%s: BigQuery has %d rows (%d distinct ids), source %d", day.Format(time.DateOnly), got.Rows, got.DistinctIDs, src)
	}
	return src
}

func (r *rig) entry(day time.Time) syncstate.Entry {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, _, err := r.state.Date(ctx, "activity_logs", civil.DateOf(day))
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}
