package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/testenv"
)

// Rows whose timestamp is NULL, ±infinity or outside BigQuery's range
// belong to no date: they are never synced, and every report counts them
// (check, status, verify, the run's WARNING and its table status line).
// -infinity does not break planning.
func TestRowsWithoutADateAreCounted(t *testing.T) {
	t.Parallel()
	clock := testenv.Clock(t)
	dsn, pool := testenv.PG(t)
	day := civil.DateOf(clock()).AddDays(-2).In(time.UTC)
	testenv.Exec(t, pool,
		`CREATE TABLE t_undated (id bigint PRIMARY KEY, created_at timestamptz)`,
		`CREATE INDEX ON t_undated (created_at, id)`,
		fmt.Sprintf(`INSERT INTO t_undated SELECT g, TIMESTAMPTZ '%s' + g * interval '1 hour' FROM generate_series(1, 15) g`, day.Format(time.RFC3339)),
		`INSERT INTO t_undated VALUES (16, NULL), (17, NULL), (18, 'infinity'), (19, '-infinity'),
			(20, '0044-03-15 12:00:00+00 BC'), (21, '12000-01-01 00:00:00+00'), (22, '0001-01-01 00:00:00+00')`)
	b := testenv.BigQuery(t)
	ps := testenv.NewPubSub(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"PUBSUB_EMULATOR_HOST": ps.Addr, "PUBSUB_PROJECT": "pgbq-test", "PUBSUB_TOPIC": "dates",
		"SYNC_TABLE": "t_undated", "SYNC_START_DATE": day.Format(time.DateOnly)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const want = "rows without a date: 6"
	var out bytes.Buffer
	if err := run(ctx, []string{"check"}, envconfig.MapLookuper(env), &out, io.Discard); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), want) {
		t.Fatalf("check does not count the rows without a date:\n%s", out.String())
	}
	var logs bytes.Buffer
	if err := run(ctx, nil, envconfig.MapLookuper(env), io.Discard, &logs, app.WithClock(clock)); err != nil {
		t.Fatalf("planner: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"severity":"WARNING","message":"rows without a date not synced","component":"planner","table":"t_undated","rows_undated":6`) {
		t.Fatalf("no WARNING with the count:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"rows_undated":6}`) || !strings.Contains(logs.String(), `"message":"table status"`) {
		t.Fatalf("the table status line lacks rows_undated:\n%s", logs.String())
	}
	for d := day; !d.After(day.AddDate(0, 0, 1)); d = d.AddDate(0, 0, 1) {
		if err := runLoaderOnce(ctx, env, clock, d); err != nil {
			t.Fatalf("loader --date %s: %v", d.Format(time.DateOnly), err)
		}
	}
	// status counts them with --verify, which reads the source (plain
	// status reads only sync_control).
	for _, cmd := range [][]string{{"status", "--verify"}, {"verify"}} {
		out.Reset()
		if err := run(ctx, cmd, envconfig.MapLookuper(env), &out, io.Discard, app.WithClock(clock)); err != nil {
			t.Fatalf("%s: %v\n%s", cmd[0], err, out.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("%s does not count the rows without a date:\n%s", cmd[0], out.String())
		}
	}
	// The row at 0001-01-01 is in BigQuery's range: it is the first date,
	// so without a start date planning begins there, and -infinity does
	// not stop it.
	delete(env, "SYNC_START_DATE")
	out.Reset()
	if err := run(ctx, []string{"--dry-run"}, envconfig.MapLookuper(env), &out, io.Discard, app.WithClock(clock)); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !strings.Contains(out.String(), "t_undated  0001-01-01  gap") {
		t.Fatalf("dry run does not start at the first dated row:\n%s", out.String())
	}
}
