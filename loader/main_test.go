package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/testenv"
)

func baseEnv() map[string]string {
	return map[string]string{
		"PG_DSN":       "host=127.0.0.1 port=1 user=x dbname=x password=s3cret-pw",
		"BQ_PROJECT":   "pgbq-test",
		"BQ_DATASET":   "dest",
		"PUBSUB_TOPIC": "dates",
		"SYNC_TABLE":   "activity_logs",
	}
}

// A configuration error stops the loader at start with a message naming
// the variable, and never prints the DSN's password.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change map[string]string
		args   []string
		want   string
	}{
		{"missing DSN", map[string]string{"PG_DSN": ""}, nil, "PG_DSN is required"},
		{"bad DSN", map[string]string{"PG_DSN": "postgres://u:s3cret-pw@host:notaport/db"}, nil, "PG_DSN is not a valid"},
		{"chunk size zero", map[string]string{"SYNC_CHUNK_SIZE": "0"}, nil, "SYNC_CHUNK_SIZE 0 is out of range"},
		{"chunk size text", map[string]string{"SYNC_CHUNK_SIZE": "lots"}, nil, "SYNC_CHUNK_SIZE"},
		{"missing table", map[string]string{"SYNC_TABLE": ""}, nil, "SYNC_TABLE is required"},
		{"missing project", map[string]string{"BQ_PROJECT": ""}, nil, "BQ_PROJECT is required"},
		{"missing topic", map[string]string{"PUBSUB_TOPIC": ""}, nil, "PUBSUB_TOPIC is required"},
		{"pull without subscription", nil, []string{"--pull"}, "PUBSUB_SUBSCRIPTION is required"},
		{"budget too long", map[string]string{"LOADER_BUDGET": "10m"}, nil, "LOADER_BUDGET 10m0s is out of range"},
		{"bad dest table", map[string]string{"SYNC_DEST_TABLE": "a-b"}, nil, "SYNC_DEST_TABLE"},
		{"bad start date", map[string]string{"SYNC_START_DATE": "2024-02-30"}, nil, "SYNC_START_DATE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := baseEnv()
			for k, v := range tc.change {
				env[k] = v
			}
			err := run(context.Background(), tc.args, envconfig.MapLookuper(env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run error = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// Columns that do not exist, or cannot be synced, stop the loader at start
// with the variable or the column named.
func TestTableErrorsNameTheColumn(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool,
		`CREATE TABLE activity_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, note text)`,
		`CREATE TABLE shapes (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, p point)`)
	b := testenv.BigQuery(t)
	cases := []struct {
		change map[string]string
		want   string
	}{
		{map[string]string{"SYNC_ID_COLUMN": "nope"}, `SYNC_ID_COLUMN: id column "nope" not found`},
		{map[string]string{"SYNC_TIMESTAMP_COLUMN": "note"}, `SYNC_TIMESTAMP_COLUMN: timestamp column "note" is text`},
		{map[string]string{"SYNC_TABLE": "missing_table"}, `SYNC_TABLE: table "missing_table" not found`},
		{map[string]string{"SYNC_TABLE": "shapes"}, `column "p" has type point, which pgbq cannot sync`},
	}
	for _, tc := range cases {
		env := baseEnv()
		env["PG_DSN"], env["BQ_PROJECT"], env["BQ_DATASET"], env["BQ_ENDPOINT"] = dsn, b.Project, b.Dataset, b.Endpoint
		for k, v := range tc.change {
			env[k] = v
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := run(ctx, nil, envconfig.MapLookuper(env), io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: run error = %v, want it to contain %q", tc.change, err, tc.want)
		}
	}
}

// The README's table documents every variable the loader reads.
func TestReadmeListsEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Variables(&Config{}) {
		if !strings.Contains(string(readme), "| `"+v.Name+"` |") {
			t.Errorf("README has no row for %s", v.Name)
		}
		if v.Default != "" && !strings.Contains(string(readme), "`"+v.Default+"`") {
			t.Errorf("README does not give %s's default %q", v.Name, v.Default)
		}
	}
}
