package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/sethvargo/go-envconfig"
	"google.golang.org/api/iterator"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/testenv"
)

// checkAndLoad runs `planner check`, then syncs day the way the loader
// does; both see the same configuration.
func checkAndLoad(ctx context.Context, t *testing.T, env map[string]string, day time.Time) (out string, checkErr, loadErr error) {
	t.Helper()
	var buf bytes.Buffer
	checkErr = run(ctx, []string{"check"}, envconfig.MapLookuper(env), &buf, io.Discard)
	loadErr = runLoaderOnce(ctx, env, testenv.Clock(t), day)
	return buf.String(), checkErr, loadErr
}

// `planner check` refuses what the loader refuses, and passes what the
// loader syncs: column names BigQuery refuses and names equal but for
// case (until renamed or excluded in SYNC_TABLES, which then travel to
// BigQuery under their new names), a column retyped since the last sync,
// a missing SELECT privilege, NULL ids.
func TestCheckAgreesWithLoader(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	day := civil.DateOf(testenv.Clock(t)()).AddDays(-2).In(time.UTC)
	testenv.Exec(t, pool,
		`CREATE TABLE hostile (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, "first name" text, "some-col" integer,
			"1col" integer, "café" text, "Foo" integer, foo integer, secret text, "__PGBQ_no_match" integer)`,
		fmt.Sprintf(`INSERT INTO hostile SELECT g, TIMESTAMPTZ '%s' + g * interval '1 hour', 'n' || g, g, g + 1, 'c' || g, g + 2, g + 3, 's', g
			FROM generate_series(1, 5) g`, day.Format(time.RFC3339)))
	b := testenv.BigQuery(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"SYNC_TABLES": `[{"table":"hostile"}]`}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	out, checkErr, loadErr := checkAndLoad(ctx, t, env, day)
	if !errors.Is(checkErr, ErrUnsyncable) || !strings.Contains(out, "unsyncable=6") {
		t.Fatalf("check of refused names: err %v\n%s", checkErr, out)
	}
	for _, col := range []string{`column "first name"`, `column "some-col"`, `column "1col"`, `column "café"`, `columns "Foo" and "foo" differ only in case`, `column "__PGBQ_no_match": pgbq reserves`} {
		if !strings.Contains(out, "refused: "+bq.ErrColumnName.Error()+": "+col) {
			t.Fatalf("check does not refuse %s:\n%s", col, out)
		}
		if loadErr == nil || !strings.Contains(loadErr.Error(), col) {
			t.Fatalf("the loader does not refuse %s as check does: %v", col, loadErr)
		}
	}
	if !strings.Contains(out, `rename it in SYNC_TABLES ("columns": {"first name": "new_name"}) or leave it out ("exclude": ["first name"])`) {
		t.Fatalf("check does not say how to fix a name:\n%s", out)
	}

	// Renamed and excluded: check passes, the loader syncs, BigQuery holds
	// the values under the new names and never sees the excluded column.
	env["SYNC_TABLES"] = `[{"table":"hostile","columns":{"first name":"first_name","some-col":"some_col","1col":"col1","café":"cafe","Foo":"foo_upper","__PGBQ_no_match":"no_match"},"exclude":["secret"]}]`
	out, checkErr, loadErr = checkAndLoad(ctx, t, env, day)
	if checkErr != nil || loadErr != nil || !strings.Contains(out, "unsyncable=0") || !strings.Contains(out, `arrives as "first_name"`) || !strings.Contains(out, "excluded: not synced") {
		t.Fatalf("renamed: check %v, load %v\n%s", checkErr, loadErr, out)
	}
	meta, err := b.Client.Dataset(b.Dataset).Table("hostile").Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range meta.Schema {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "id,created_at,first_name,some_col,col1,cafe,foo_upper,foo,no_match" {
		t.Fatalf("destination columns = %s", got)
	}
	it, err := bq.RunQuery(ctx, b.Client, fmt.Sprintf("SELECT first_name, some_col, col1, cafe, foo_upper, foo FROM `%s.%s.hostile` WHERE id = 3", b.Project, b.Dataset))
	if err != nil {
		t.Fatal(err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(row); got != "[n3 3 4 c3 5 6]" {
		t.Fatalf("row 3 = %s", got)
	}
	if err := it.Next(&row); !errors.Is(err, iterator.Done) {
		t.Fatalf("more than one row 3: %v", err)
	}

	// A column retyped since the last sync: check compares the destination.
	testenv.Exec(t, pool, `ALTER TABLE hostile ALTER COLUMN "1col" TYPE text`)
	out, checkErr, loadErr = checkAndLoad(ctx, t, env, day.AddDate(0, 0, 1))
	want := `column 5 is "col1" INTEGER in BigQuery but "col1" STRING in the source`
	if !errors.Is(checkErr, ErrUnsyncable) || !strings.Contains(out, "refused: table hostile: destination schema mismatch") || !strings.Contains(out, want) {
		t.Fatalf("check of a retyped column: err %v\n%s", checkErr, out)
	}
	if loadErr == nil || !strings.Contains(loadErr.Error(), want) {
		t.Fatalf("the loader does not refuse the retyped column as check does: %v", loadErr)
	}
	testenv.Exec(t, pool, `ALTER TABLE hostile ALTER COLUMN "1col" TYPE integer USING "1col"::integer`)

	// No SELECT privilege on a column: refused by both, until excluded.
	role := testenv.Name("ro")
	testenv.Exec(t, pool, fmt.Sprintf(`CREATE ROLE %s LOGIN`, role),
		fmt.Sprintf(`GRANT SELECT (id, created_at, "first name", "some-col", "1col", "café", "Foo", foo) ON hostile TO %s`, role))
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), fmt.Sprintf(`REVOKE ALL ON hostile FROM %[1]s; DROP ROLE %[1]s`, role))
	})
	env["PG_DSN"] = strings.Replace(dsn, "user=postgres", "user="+role, 1)
	env["SYNC_TABLES"] = `[{"table":"hostile","columns":{"first name":"first_name","some-col":"some_col","1col":"col1","café":"cafe","Foo":"foo_upper"}}]`
	out, checkErr, loadErr = checkAndLoad(ctx, t, env, day)
	want = `no SELECT privilege on column "secret"`
	if !errors.Is(checkErr, ErrUnsyncable) || !strings.Contains(out, want) {
		t.Fatalf("check without privilege: err %v\n%s", checkErr, out)
	}
	if loadErr == nil || !strings.Contains(loadErr.Error(), want) {
		t.Fatalf("the loader does not refuse the column without privilege as check does: %v", loadErr)
	}
}

// NULL ids: check counts them where an index makes it cheap and refuses
// the table; the loader fails the date naming table, date and rows, never
// stages them; a nullable id column and one that no unique index covers
// are warned about.
func TestNullIDs(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	day := civil.DateOf(testenv.Clock(t)()).AddDays(-2).In(time.UTC)
	testenv.Exec(t, pool,
		`CREATE TABLE nullid (id bigint, created_at timestamptz NOT NULL)`,
		`CREATE INDEX ON nullid (id)`,
		fmt.Sprintf(`INSERT INTO nullid SELECT CASE WHEN g %% 4 = 0 THEN NULL ELSE g END, TIMESTAMPTZ '%s' + g * interval '1 hour' FROM generate_series(1, 10) g`,
			day.Format(time.RFC3339)))
	b := testenv.BigQuery(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"SYNC_TABLE": "nullid", "SYNC_CHUNK_SIZE": "3"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, checkErr, loadErr := checkAndLoad(ctx, t, env, day)
	for _, want := range []string{`refused: unsupported source table: table "public"."nullid": 2 rows have a NULL id (column "id")`,
		`warning: the id column "id" may hold NULL`, `warning: no unique index on the id column "id" alone proves its values unique`} {
		if !errors.Is(checkErr, ErrUnsyncable) || !strings.Contains(out, want) {
			t.Fatalf("check: err %v, output lacks %q:\n%s", checkErr, want, out)
		}
	}
	want := fmt.Sprintf(`table "public"."nullid", date %s: 2 rows have a NULL id (column "id") (created_at %s`, day.Format(time.DateOnly), day.Add(4*time.Hour).Format("2006-01-02 15:04:05"))
	if loadErr == nil || !strings.Contains(loadErr.Error(), want) {
		t.Fatalf("loader: %v, want it to contain %q", loadErr, want)
	}

	// A NULL id that shares its timestamp with the last row of a chunk
	// is outside the next chunk's keyset condition: it shows only as a
	// count that differs, and the date fails naming it all the same.
	testenv.Exec(t, pool,
		`CREATE TABLE nullid2 (id bigint, created_at timestamptz NOT NULL)`,
		fmt.Sprintf(`INSERT INTO nullid2 VALUES (1, '%[1]s 01:00+00'), (2, '%[1]s 02:00+00'), (3, '%[1]s 03:00+00'), (NULL, '%[1]s 03:00+00'), (5, '%[1]s 04:00+00')`,
			day.Format(time.DateOnly)))
	env["SYNC_TABLE"] = "nullid2"
	out, checkErr, loadErr = checkAndLoad(ctx, t, env, day)
	if checkErr != nil || !strings.Contains(out, `the id column "id" may hold NULL and no index leads with it`) {
		t.Fatalf("check of nullid2: %v\n%s", checkErr, out)
	}
	want = fmt.Sprintf(`table "public"."nullid2", date %s: 1 rows have a NULL id (column "id") (created_at %s 03:00:00`, day.Format(time.DateOnly), day.Format(time.DateOnly))
	if loadErr == nil || !strings.Contains(loadErr.Error(), want) {
		t.Fatalf("loader: %v, want it to contain %q", loadErr, want)
	}
}

// An id in two dates passes every per-date check; verify finds it.
func TestVerifyFindsIDsInSeveralDates(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	day := civil.DateOf(testenv.Clock(t)()).AddDays(-3).In(time.UTC)
	testenv.Exec(t, pool,
		`CREATE TABLE dup (id bigint NOT NULL, created_at timestamptz NOT NULL)`,
		fmt.Sprintf(`INSERT INTO dup VALUES (1, '%[1]s 10:00+00'), (2, '%[1]s 11:00+00'), (2, '%[2]s 10:00+00'), (3, '%[2]s 11:00+00')`,
			day.Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly)))
	b := testenv.BigQuery(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint, "SYNC_TABLE": "dup"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for d := day; !d.After(day.AddDate(0, 0, 1)); d = d.AddDate(0, 0, 1) {
		if err := runLoaderOnce(ctx, env, testenv.Clock(t), d); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	err := run(ctx, []string{"verify", "--from", day.Format(time.DateOnly), "--to", day.AddDate(0, 0, 1).Format(time.DateOnly)},
		envconfig.MapLookuper(env), &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "verify: dates=2 mismatched=0") || !strings.Contains(out.String(), "verify: 1 ids appear in more than one date") {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
}
