package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/testenv"
)

// Days before 1960-01-01 have no day partition of their own in BigQuery
// (their rows go to __UNPARTITIONED__, and no decorator names them):
// `planner check` names them and says how they are published, and warns
// of a history longer than BigQuery's partitions per table, with the way
// out.
func TestCheckNamesDaysOutsidePartitions(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool,
		`CREATE TABLE t_old (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`,
		`CREATE INDEX ON t_old (created_at, id)`,
		`INSERT INTO t_old VALUES (1, '1901-03-04 10:00:00+00'), (2, '1959-12-31 23:00:00+00'), (3, '2024-01-01 00:00:00+00')`)
	b := testenv.BigQuery(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"SYNC_TABLE": "t_old"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"check"}, envconfig.MapLookuper(env), &out, io.Discard); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"warning: days 1901-03-04..1959-12-31 are outside BigQuery's day partitions (1960-01-01..2159-12-31)",
		"__UNPARTITIONED__", "published by MERGE",
		"near or over BigQuery's 10000 partitions per table", "SYNC_START_DATE",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("check does not say %q:\n%s", want, out.String())
		}
	}
}
