package pgsource_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/testenv"
)

// What `planner check` says of each kind of key column: a key it cannot
// order as BigQuery does, or cannot prove unique, is refused naming the
// column; an index that cannot serve the order is a warning saying the
// cost and the index to create; a well-indexed key of every kind is
// accepted silently.
func TestKeyCheckEveryKind(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool,
		`CREATE TABLE k_uuid (k uuid PRIMARY KEY, at timestamptz NOT NULL)`, `CREATE INDEX ON k_uuid (at, k)`,
		`CREATE TABLE k_num (k numeric(20,4) PRIMARY KEY, at timestamptz NOT NULL)`, `CREATE INDEX ON k_num (at, k)`,
		`CREATE TABLE k_text_c (k text PRIMARY KEY, at timestamptz NOT NULL)`, `CREATE INDEX ON k_text_c (at, k COLLATE "C")`,
		`CREATE TABLE k_text_us (k text COLLATE "en-US-x-icu" PRIMARY KEY, at timestamptz NOT NULL)`, `CREATE INDEX ON k_text_us (at, k)`,
		`CREATE TABLE k_text_dup (k varchar(20) NOT NULL, at timestamptz NOT NULL)`, `CREATE INDEX ON k_text_dup (at, k COLLATE "C")`,
		`CREATE TABLE k_uuid_noidx (k uuid PRIMARY KEY, at timestamptz NOT NULL)`,
		`CREATE TABLE k_wide (k numeric PRIMARY KEY, at timestamptz NOT NULL)`,
		`CREATE TABLE k_float (k double precision PRIMARY KEY, at timestamptz NOT NULL)`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		table             string
		openErr, warn, no string // substrings of the error at open, a warning, a refusal
	}{
		{table: "k_uuid"},
		{table: "k_num"},
		{table: "k_text_c"},
		{table: "k_text_us", warn: `CREATE INDEX ON "public"."k_text_us" ("at", "k" COLLATE "C")`},
		{table: "k_text_dup", no: `the text id column "k" has no unique index`},
		{table: "k_uuid_noidx", warn: `no index leads with (at, k)`},
		{table: "k_wide", openErr: `id column "k" is numeric, which travels as text`},
		{table: "k_float", openErr: `id column "k" is double precision; it must be`},
	} {
		t.Run(c.table, func(t *testing.T) {
			src, err := pgsource.Open(ctx, pgsource.Config{DSN: dsn}, pgsource.TableSpec{Table: c.table, IDColumn: "k", TimestampColumn: "at"})
			if c.openErr != "" {
				var se *pgsource.SpecError
				if !errors.As(err, &se) || se.Field != "id" || !strings.Contains(err.Error(), c.openErr) {
					t.Fatalf("open: %v, want an id SpecError containing %q", err, c.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			warnings, problems, err := src.KeyCheck(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(warnings, "\n"); (c.warn == "") != (got == "") || !strings.Contains(got, c.warn) {
				t.Errorf("warnings %q, want one containing %q", got, c.warn)
			}
			if got := errors.Join(problems...); (c.no == "") != (got == nil) || (got != nil && !strings.Contains(got.Error(), c.no)) {
				t.Errorf("problems %v, want one containing %q", got, c.no)
			}
		})
	}
}
