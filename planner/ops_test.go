package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/cli"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// -h prints every command and exits 0; bad flags, arguments and
// configuration exit 2.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	env := envconfig.MapLookuper(map[string]string{"PG_DSN": "host=127.0.0.1 port=1", "BQ_PROJECT": "p", "BQ_DATASET": "d", "SYNC_TABLE": "t"})
	var out bytes.Buffer
	err := run(context.Background(), []string{"-h"}, env, &out, io.Discard)
	if cli.Code(err) != cli.ExitOK {
		t.Fatalf("-h: exit %d (%v)", cli.Code(err), err)
	}
	for _, c := range commands[1:] {
		if !strings.Contains(out.String(), "\n  "+c.name+" ") {
			t.Errorf("help lacks command %q:\n%s", c.name, out.String())
		}
	}
	for _, want := range []string{"--dry-run", "--state", "--reason", "PLANNER_QUARANTINE_AFTER", "SYNC_TABLES", "Exit codes:", "Examples:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"status", "--help"}, env, &out, io.Discard); cli.Code(err) != 0 || !strings.Contains(out.String(), "-format") {
		t.Errorf("status --help: exit %d\n%s", cli.Code(err), out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"--version"}, env, &out, io.Discard); err != nil || out.String() != "planner dev\n" {
		t.Errorf("--version: %v %q", err, out.String())
	}
	for _, args := range [][]string{{"--nope"}, {"status", "--nope"}, {"status", "extra"}, {"frobnicate"},
		{"status", "--state", "bogus"}, {"status", "--format", "xml"}, {"resync", "--table", "t"},
		{"resync", "--table", "t", "--from", "2024-13-01"}, {"pause"}} {
		if err := run(context.Background(), args, env, io.Discard, io.Discard); cli.Code(err) != cli.ExitUsage {
			t.Errorf("%q: exit %d (%v), want %d", args, cli.Code(err), err, cli.ExitUsage)
		}
	}
	bad := envconfig.MapLookuper(map[string]string{"PG_DSN": "x", "BQ_PROJECT": "p", "BQ_DATASET": "d", "SYNC_TABLE": "t", "PLANNER_QUARANTINE_AFTER": "-1"})
	if err := run(context.Background(), []string{"status"}, bad, io.Discard, io.Discard); cli.Code(err) != cli.ExitUsage ||
		!strings.Contains(err.Error(), "PLANNER_QUARANTINE_AFTER -1") {
		t.Errorf("bad configuration: exit %d (%v), want 2", cli.Code(err), err)
	}
	if err := run(context.Background(), []string{"status"}, envconfig.MapLookuper(map[string]string{"PLANNER_MAX_DATES": "x"}), io.Discard, io.Discard); cli.Code(err) != cli.ExitUsage {
		t.Errorf("unparsable variable: exit %d (%v), want 2", cli.Code(err), err)
	}
}

// resync of a finished date re-opens it with the reason and publishes it;
// a loader syncs it again and the destination holds the day's rows once.
// status, resync, pause and resume never need PostgreSQL.
func TestResyncRepublishes(t *testing.T) {
	t.Parallel()
	clock := testenv.Clock(t)
	dsn, pool := testenv.PG(t)
	day := civil.DateOf(clock()).AddDays(-3).In(time.UTC)
	testenv.Exec(t, pool, `CREATE TABLE activity_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text)`,
		fmt.Sprintf(`INSERT INTO activity_logs SELECT g, TIMESTAMPTZ '%s' + g * interval '5 minutes', 'v' || g FROM generate_series(1, 200) g`, day.Format(time.RFC3339)))
	b := testenv.BigQuery(t)
	ps := testenv.NewPubSub(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"PUBSUB_EMULATOR_HOST": ps.Addr, "PUBSUB_PROJECT": "pgbq-test", "PUBSUB_TOPIC": "dates",
		"SYNC_TABLE": "activity_logs", "SYNC_START_DATE": day.Format(time.DateOnly), "SYNC_CHUNK_SIZE": "60"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := runLoaderOnce(ctx, env, clock, day); err != nil {
		t.Fatal(err)
	}
	// The operator commands run with PostgreSQL out of reach.
	noPG := map[string]string{}
	for k, v := range env {
		noPG[k] = v
	}
	noPG["PG_DSN"] = "host=127.0.0.1 port=1 connect_timeout=1"
	op := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, args, envconfig.MapLookuper(noPG), &out, io.Discard, app.WithClock(clock)); err != nil {
			t.Fatalf("planner %q: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	d := day.Format(time.DateOnly)
	if out := op("status", "--to", d); !strings.Contains(out, d+"  finished") || !strings.Contains(out, "finished_pct=100.0") {
		t.Fatalf("status before resync:\n%s", out)
	}
	if out := op("resync", "--table", "activity_logs", "--from", d, "--reason", "rows fixed at the source"); !strings.Contains(out, "resync: 1 dates re-opened") {
		t.Fatalf("resync:\n%s", out)
	}
	if got := ps.Published(); len(got) != 1 || !strings.Contains(got[0], d) {
		t.Fatalf("published %v, want the one date", got)
	}
	if out := op("status", "--to", d, "--state", "unfinished"); !strings.Contains(out, d+"  planned") {
		t.Fatalf("status after resync:\n%s", out)
	}
	// The loader works the message: the whole day again.
	if err := runLoaderOnce(ctx, env, clock, day); err != nil {
		t.Fatal(err)
	}
	it, err := bq.RunQuery(ctx, b.Client, fmt.Sprintf("SELECT COUNT(*), COUNT(DISTINCT id) FROM `%s.%s.activity_logs` WHERE DATE(created_at) = DATE '%s'", b.Project, b.Dataset, d))
	if err != nil {
		t.Fatal(err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		t.Fatal(err)
	}
	counts := [2]int64{row[0].(int64), row[1].(int64)}
	var want int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM activity_logs WHERE created_at >= $1 AND created_at < $2`, day, day.AddDate(0, 0, 1)).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if counts[0] != want || counts[1] != want {
		t.Fatalf("BigQuery holds %d rows (%d distinct) of %s, want %d once", counts[0], counts[1], d, want)
	}
	store := syncstate.New(b.Client, b.Project, b.Dataset)
	if n, err := store.CountState(ctx, "activity_logs", civil.DateOf(day), syncstate.StateReopened); err != nil || n != 1 {
		t.Fatalf("reopened entries: %d, %v", n, err)
	}
	if e, _, err := store.Date(ctx, "activity_logs", civil.DateOf(day)); err != nil || !e.IsFinished {
		t.Fatalf("after the loader: %+v, %v", e, err)
	}
	// pause and resume are recorded; status shows the pause.
	op("pause", "--table", "activity_logs", "--reason", "maintenance")
	if out := op("status", "--state", "paused"); !strings.Contains(out, "paused=true") {
		t.Fatalf("status of a paused table:\n%s", out)
	}
	op("resume", "--table", "activity_logs")
	if out := op("status", "--state", "paused"); out != "" {
		t.Fatalf("status --state paused of a resumed table:\n%s", out)
	}
}
