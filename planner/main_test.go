package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/docscheck"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/syncstate"
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

// awkwardClocks are the times the date-sensitive tests run at, besides
// the wall clock (or PGBQ_TEST_NOW): just after UTC midnight, while
// yesterday is still within its finish grace; a minute before midnight;
// the last day of a month and of a year, and the first hour after each.
var awkwardClocks = []struct {
	name string
	at   time.Time
}{
	{"0030", time.Date(2026, 6, 10, 0, 30, 0, 0, time.UTC)},
	{"2359", time.Date(2026, 6, 10, 23, 59, 0, 0, time.UTC)},
	{"month-end", time.Date(2026, 2, 28, 23, 59, 0, 0, time.UTC)},
	{"month-start", time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC)},
	{"year-end", time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC)},
	{"year-start", time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC)},
}

// eachClock runs f once at the test clock and once at each awkward time,
// as parallel subtests.
func eachClock(t *testing.T, f func(t *testing.T, now func() time.Time)) {
	t.Helper()
	t.Run("now", func(t *testing.T) {
		t.Parallel()
		f(t, testenv.Clock(t))
	})
	for _, c := range awkwardClocks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f(t, testenv.ClockAt(c.at))
		})
	}
}

// --dry-run prints the plan and needs no topic.
func TestDryRun(t *testing.T) {
	t.Parallel()
	eachClock(t, testDryRun)
}

func testDryRun(t *testing.T, clock func() time.Time) { //nolint:thelper // a test body, run once per clock
	now := clock()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool, `CREATE TABLE activity_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`,
		fmt.Sprintf(`INSERT INTO activity_logs SELECT g, TIMESTAMPTZ '%s' - g * interval '1 hour' FROM generate_series(1, 50) g`, now.Format(time.RFC3339Nano)))
	b := testenv.BigQuery(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"SYNC_TABLE": "activity_logs"}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, []string{"--dry-run"}, envconfig.MapLookuper(env), &out, io.Discard, app.WithClock(clock)); err != nil {
		t.Fatal(err)
	}
	// 50 hours of rows: the plan runs from the first row's day through today.
	first, today := civil.DateOf(now.Add(-50*time.Hour)), civil.DateOf(now)
	want := []string{first.String() + "  new", today.String() + "  today", fmt.Sprintf("plan: %d dates (dry run, nothing published)", today.DaysSince(first)+1)}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Fatalf("dry run output lacks %q:\n%s", w, out.String())
		}
	}
}

// docs/configuration.md documents every variable the planner reads, and
// the docs show every command and flag the planner defines, and no other.
func TestDocumented(t *testing.T) {
	t.Parallel()
	root := docscheck.Root(t)
	page, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range docscheck.VariableProblems(string(page), config.Variables(&Config{}), nil) {
		t.Error("docs/configuration.md: " + p)
	}
	c, err := parseArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	prog := docscheck.Program{Name: "planner", Commands: map[string][]string{}}
	c.global.VisitAll(func(f *flag.Flag) { prog.Flags = append(prog.Flags, f.Name) })
	for name, fs := range c.sets {
		prog.Commands[name] = nil
		fs.VisitAll(func(f *flag.Flag) { prog.Commands[name] = append(prog.Commands[name], f.Name) })
	}
	for _, p := range prog.CommandProblems(docscheck.Load(t, root, docscheck.Pages(t, root))) {
		t.Error(p)
	}
	for _, p := range prog.Undocumented(docscheck.Load(t, root, []string{"docs/cli.md"})) {
		t.Error("docs/cli.md: " + p)
	}
}

// verify finds a row deleted in BigQuery and a row added in PostgreSQL to
// a finished date, exits non-zero, and --repair removes both differences;
// the planner's recheck re-opens a recent finished date that got a row late.
func TestVerifyAndRepair(t *testing.T) {
	t.Parallel()
	eachClock(t, testVerifyAndRepair)
}

func testVerifyAndRepair(t *testing.T, clock func() time.Time) { //nolint:thelper // a test body, run once per clock
	dsn, pool := testenv.PG(t)
	// The last three days closed (ended more than the 1 h finish grace
	// ago): the day before the one an hour ago.
	d3 := civil.DateOf(clock().Add(-time.Hour)).AddDays(-1).In(time.UTC)
	d1, d2 := d3.AddDate(0, 0, -2), d3.AddDate(0, 0, -1)
	testenv.Exec(t, pool, `CREATE TABLE activity_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text)`,
		fmt.Sprintf(`INSERT INTO activity_logs SELECT g, TIMESTAMPTZ '%s' + g * interval '10 minutes', 'v' || g FROM generate_series(1, 400) g`, d1.Add(-time.Hour).Format(time.RFC3339)))
	b := testenv.BigQuery(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"SYNC_TABLE": "activity_logs", "SYNC_START_DATE": d1.Format(time.DateOnly), "SYNC_CHUNK_SIZE": "50"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var cfg Config
	if err := config.Load(ctx, &cfg, envconfig.MapLookuper(env)); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(0); err != nil {
		t.Fatal(err)
	}
	deps, err := app.Open(ctx, &cfg.Common, app.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer deps.Close()
	s, err := deps.NewSyncer(&cfg.Common, deps.Tables[0], "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Time{d1, d2, d3} {
		if out, err := s.Sync(ctx, d, time.Now().Add(time.Hour)); err != nil || out.String() != "finished" {
			t.Fatalf("sync %s: %v %v", d, out, err)
		}
	}
	verify := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"verify"}, args...), envconfig.MapLookuper(env), &out, io.Discard, app.WithClock(clock))
		return out.String(), err
	}
	if out, err := verify(); err != nil || strings.Contains(out, "MISMATCH") {
		t.Fatalf("verify of a clean sync: %v\n%s", err, out)
	}
	// Differences made by hand.
	var victim int64
	if err := pool.QueryRow(ctx, `SELECT min(id) FROM activity_logs WHERE created_at >= $1`, d2).Scan(&victim); err != nil {
		t.Fatal(err)
	}
	if _, err := bq.RunQuery(ctx, b.Client, fmt.Sprintf("DELETE FROM `%s.%s.activity_logs` WHERE id = %d", b.Project, b.Dataset, victim)); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, pool, fmt.Sprintf(`INSERT INTO activity_logs VALUES (5000, TIMESTAMPTZ '%s', 'late')`, d3.Add(time.Hour).Format(time.RFC3339)))

	out, err := verify()
	if !errors.Is(err, ErrMismatch) || strings.Count(out, "MISMATCH") != 2 {
		t.Fatalf("verify after the changes: err %v, output:\n%s", err, out)
	}
	out, err = verify("--repair")
	if err != nil || strings.Count(out, "repaired") != 2 {
		t.Fatalf("verify --repair: %v\n%s", err, out)
	}
	if out, err := verify(); err != nil || strings.Contains(out, "MISMATCH") {
		t.Fatalf("verify after repair: %v\n%s", err, out)
	}
	// The repair is recorded in sync_control.
	n, err := deps.State.CountState(ctx, "activity_logs", civil.DateOf(d2), syncstate.StateReopened)
	if err != nil || n != 1 {
		t.Fatalf("reopened entries for %s: %d %v", d2, n, err)
	}

	// A row reaches a finished recent date late: the recheck re-opens it.
	testenv.Exec(t, pool, fmt.Sprintf(`INSERT INTO activity_logs VALUES (5001, TIMESTAMPTZ '%s', 'later')`, d2.Add(time.Hour).Format(time.RFC3339)))
	p := &planner.Planner{Source: deps.Tables[0].Source, Dest: deps.Tables[0].Warehouse, State: deps.State, Table: "activity_logs", InFlight: time.Hour, MaxDates: 10, Start: d1, Now: clock}
	reopened, err := p.Recheck(ctx, 3)
	if err != nil || len(reopened) != 1 || reopened[0] != civil.DateOf(d2) {
		t.Fatalf("recheck reopened %v, %v; want [%s]", reopened, err, d2.Format(time.DateOnly))
	}
	plan, err := p.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) == 0 || plan[0].Date != civil.DateOf(d2) || plan[0].Reason != "reopened" {
		t.Fatalf("plan after recheck = %+v", plan)
	}
}

// check prints the mapping of every column, names each that cannot be
// synced and exits non-zero; it needs no BigQuery or Pub/Sub settings.
func TestCheck(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool,
		`CREATE TABLE good (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, amount numeric, iv interval)`,
		`CREATE TABLE bad (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, p point, tags point[])`)
	run1 := func(table, idCol string) (string, error) {
		var out bytes.Buffer
		env := map[string]string{"PG_DSN": dsn, "SYNC_TABLE": table, "SYNC_ID_COLUMN": idCol}
		err := run(context.Background(), []string{"check"}, envconfig.MapLookuper(env), &out, io.Discard)
		return out.String(), err
	}
	out, err := run1("good", "id")
	if err != nil || !strings.Contains(out, "exact decimal text") || !strings.Contains(out, "ISO 8601") || !strings.Contains(out, "check: columns=4 unsyncable=0") {
		t.Fatalf("check good: %v\n%s", err, out)
	}
	out, err = run1("bad", "nope")
	if !errors.Is(err, ErrUnsyncable) {
		t.Fatalf("check bad: err %v\n%s", err, out)
	}
	for _, want := range []string{`column "p" has type point`, `column "tags" has type point[]`, `SYNC_ID_COLUMN: id column "nope" not found`, "unsyncable=3"} {
		if !strings.Contains(out, want) {
			t.Fatalf("check output lacks %q:\n%s", want, out)
		}
	}
}

// Many tables from one configuration, each with its own key columns,
// destination, chunk size and start date: planned in one run, synced by
// one loader; a table that breaks does not stop the others.
func TestManyTables(t *testing.T) {
	t.Parallel()
	clock := testenv.Clock(t)
	dsn, pool := testenv.PG(t)
	day := civil.DateOf(clock()).AddDays(-2).In(time.UTC)
	testenv.Exec(t, pool,
		`CREATE SCHEMA shop`,
		`CREATE TABLE shop.orders (id integer PRIMARY KEY, placed_at timestamp NOT NULL, total numeric(10,2))`,
		`CREATE TABLE clicks (click_id bigint PRIMARY KEY, at timestamptz NOT NULL, url text)`,
		fmt.Sprintf(`INSERT INTO shop.orders SELECT g, TIMESTAMP '%s' + g * interval '7 minutes', g / 3.0 FROM generate_series(1, 150) g`, day.Format("2006-01-02 15:04:05")),
		fmt.Sprintf(`INSERT INTO clicks SELECT g, TIMESTAMPTZ '%s' + g * interval '3 minutes', '/u/' || g FROM generate_series(1, 300) g`, day.Format(time.RFC3339)))
	b := testenv.BigQuery(t)
	ps := testenv.NewPubSub(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"PUBSUB_EMULATOR_HOST": ps.Addr, "PUBSUB_PROJECT": "pgbq-test", "PUBSUB_TOPIC": "dates",
		"SYNC_TABLES": fmt.Sprintf(`[{"table":"shop.orders","timestamp_column":"placed_at","chunk_size":7,"start_date":"%s"},
			{"table":"clicks","id_column":"click_id","timestamp_column":"at","dest_table":"click_events","chunk_size":40}]`, day.Format(time.DateOnly))}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"--dry-run"}, envconfig.MapLookuper(env), &out, io.Discard, app.WithClock(clock)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"orders        " + day.Format(time.DateOnly), "click_events  " + day.Format(time.DateOnly)} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("dry run lacks %q:\n%s", want, out.String())
		}
	}
	// Sync both tables' dates with the loader's own entry point.
	for d := day; !d.After(day.AddDate(0, 0, 1)); d = d.AddDate(0, 0, 1) {
		if err := runLoaderOnce(ctx, env, clock, d); err != nil {
			t.Fatalf("loader --date %s: %v", d.Format(time.DateOnly), err)
		}
	}
	out.Reset()
	if err := run(ctx, []string{"status", "--verify"}, envconfig.MapLookuper(env), &out, io.Discard, app.WithClock(clock)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "source_rows=450 bigquery_rows=450 duplicates=0 mismatched=0 tables=2") ||
		strings.Count(out.String(), "summary: table=") != 2 {
		t.Fatalf("status:\n%s", out.String())
	}
	// One table breaks: the other is still planned, and the run fails.
	testenv.Exec(t, pool, `DROP TABLE clicks`)
	before := len(ps.Published())
	err := run(ctx, nil, envconfig.MapLookuper(env), io.Discard, io.Discard, app.WithClock(clock))
	if err == nil || !strings.Contains(err.Error(), `SYNC_TABLES[1].table: table "clicks" not found`) {
		t.Fatalf("planner with a dropped table: %v", err)
	}
	published := ps.Published()[before:]
	if len(published) == 0 {
		t.Fatal("the healthy table was not planned")
	}
	for _, m := range published {
		if !strings.Contains(m, `"table":"orders"`) {
			t.Fatalf("unexpected message %s", m)
		}
	}
}

// runLoaderOnce syncs one date of every configured table the way
// `loader --date` does, through the shared wiring.
func runLoaderOnce(ctx context.Context, env map[string]string, clock func() time.Time, day time.Time) error {
	var cfg Config
	if err := config.Load(ctx, &cfg, envconfig.MapLookuper(env)); err != nil {
		return err
	}
	cfg.Common.Normalize()
	deps, err := app.Open(ctx, &cfg.Common, app.WithClock(clock))
	if err != nil {
		return err
	}
	defer deps.Close()
	for _, t := range deps.Tables {
		s, err := deps.NewSyncer(&cfg.Common, t, "test")
		if err != nil {
			return err
		}
		for {
			out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
			if err != nil {
				return fmt.Errorf("%s: %w", t.Config.DestTable, err)
			}
			if out.String() != "continue" {
				break
			}
		}
	}
	return nil
}
