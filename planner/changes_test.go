package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/testenv"
)

// `planner check` says what each table gets: append-only in plain words,
// or updates followed naming the column, and a bound on finding deletes;
// it refuses an updated-at column with no index (each run would read the
// whole table) or of another type, naming the column. `planner status`
// says the same of each table.
func TestCheckSaysWhatEachTableGets(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool,
		`CREATE TABLE logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`,
		`CREATE TABLE orders (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, updated_at timestamptz, touched text)`,
		`INSERT INTO orders SELECT g, now() - g * interval '1 day', now(), 'x' FROM generate_series(1, 62) g`)
	b := testenv.BigQuery(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	check := func(tables string) (string, error) {
		var out bytes.Buffer
		env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
			"SYNC_TABLES": tables}
		err := run(ctx, []string{"check"}, envconfig.MapLookuper(env), &out, io.Discard)
		return out.String(), err
	}

	out, err := check(`[{"table":"logs"},{"table":"orders","updated_at":"updated_at"}]`)
	if !errors.Is(err, ErrUnsyncable) || !strings.Contains(out, `SYNC_TABLES[1].updated_at: no index on the updated-at column: create one, e.g. CREATE INDEX CONCURRENTLY ON "public"."orders" ("updated_at")`) {
		t.Fatalf("check without the index: %v\n%s", err, out)
	}
	if !strings.Contains(out, "changes: append-only (updates not followed") {
		t.Fatalf("check does not say logs is append-only:\n%s", out)
	}
	out, err = check(`[{"table":"orders","updated_at":"touched"}]`)
	if !errors.Is(err, ErrUnsyncable) || !strings.Contains(out, `SYNC_TABLES[0].updated_at: unusable updated-at column "touched" of "public"."orders": must be timestamptz or timestamp`) {
		t.Fatalf("check of a text column: %v\n%s", err, out)
	}

	testenv.Exec(t, pool, `CREATE INDEX ON orders (updated_at)`)
	out, err = check(`[{"table":"orders","updated_at":"updated_at"}]`)
	want := "changes: updates followed (updated_at column updated_at, grace 10m0s); deletes found within 2 runs (62 days of history, 31 a run)"
	if err != nil || !strings.Contains(out, want) {
		t.Fatalf("check with the index: %v\n%s\nwant the line %q", err, out, want)
	}

	var status bytes.Buffer
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"SYNC_TABLES": `[{"table":"logs"},{"table":"orders","updated_at":"updated_at"}]`}
	if err := run(ctx, []string{"migrate"}, envconfig.MapLookuper(env), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"status"}, envconfig.MapLookuper(env), &status, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"changes: append-only (updates not followed", "changes: updates followed (updated_at column updated_at, grace 10m0s)"} {
		if !strings.Contains(status.String(), line) {
			t.Errorf("status does not say %q:\n%s", line, status.String())
		}
	}
}
