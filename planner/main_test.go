package main

import (
	"bytes"
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

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PG_DSN": "host=127.0.0.1 port=1", "BQ_PROJECT": "pgbq-test", "BQ_DATASET": "d", "SYNC_TABLE": "t",
		"PLANNER_MAX_DATES": "0"}
	err := run(context.Background(), nil, envconfig.MapLookuper(env), io.Discard, io.Discard)
	for _, want := range []string{"PUBSUB_TOPIC is required", "PLANNER_MAX_DATES 0 is out of range"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("run error = %v, want it to contain %q", err, want)
		}
	}
	if err := run(context.Background(), []string{"frobnicate"}, envconfig.MapLookuper(env), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command error = %v", err)
	}
}

// --dry-run prints the plan and needs no topic.
func TestDryRun(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool, `CREATE TABLE activity_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`,
		`INSERT INTO activity_logs SELECT g, now() - g * interval '1 hour' FROM generate_series(1, 50) g`)
	b := testenv.BigQuery(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"SYNC_TABLE": "activity_logs"}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, []string{"--dry-run"}, envconfig.MapLookuper(env), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if !strings.Contains(out.String(), today+"  today") || !strings.Contains(out.String(), "(dry run, nothing published)") {
		t.Fatalf("dry run output:\n%s", out.String())
	}
}

// The README's table documents every variable the planner reads.
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
	}
}
