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

// A row reaches a date finished long before, outside the recheck window:
// the planner's run and `planner status` log the date at ERROR as
// "finished date differs" (the line the monitoring alerts on), with the
// command that rebuilds it; the date is not re-opened by itself.
func TestStaleFinishedDateIsReported(t *testing.T) {
	t.Parallel()
	clock := testenv.Clock(t)
	dsn, pool := testenv.PG(t)
	first := civil.DateOf(clock()).AddDays(-10).In(time.UTC)
	testenv.Exec(t, pool, `CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`,
		fmt.Sprintf(`INSERT INTO events SELECT g, TIMESTAMPTZ '%s' + g * interval '1 hour' FROM generate_series(1, 60) g`, first.Format(time.RFC3339)))
	b := testenv.BigQuery(t)
	ps := testenv.NewPubSub(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"PUBSUB_EMULATOR_HOST": ps.Addr, "PUBSUB_PROJECT": "pgbq-test", "PUBSUB_TOPIC": "dates",
		"SYNC_TABLE": "events", "SYNC_START_DATE": first.Format(time.DateOnly), "PLANNER_RECHECK_DAYS": "3"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for d := first; d.Before(first.AddDate(0, 0, 3)); d = d.AddDate(0, 0, 1) {
		if err := runLoaderOnce(ctx, env, clock, d); err != nil {
			t.Fatalf("loader --date %s: %v", d.Format(time.DateOnly), err)
		}
	}
	late := first.AddDate(0, 0, 1)
	testenv.Exec(t, pool, fmt.Sprintf(`INSERT INTO events VALUES (1000, TIMESTAMPTZ '%s')`, late.Add(90*time.Minute).Format(time.RFC3339)))
	want := fmt.Sprintf(`"severity":"ERROR","message":"finished date differs","component":"planner","table":"events","sync_date":"%s"`, late.Format(time.DateOnly))
	action := fmt.Sprintf(`"action":"planner resync --table events --from %[1]s --to %[1]s"`, late.Format(time.DateOnly))
	var logs bytes.Buffer
	if err := run(ctx, nil, envconfig.MapLookuper(env), io.Discard, &logs, app.WithClock(clock)); err != nil {
		t.Fatalf("planner: %v", err)
	}
	if !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), action) {
		t.Fatalf("the run does not report the stale date at ERROR:\n%s", logs.String())
	}
	for _, m := range ps.Published() {
		if strings.Contains(m, late.Format(time.DateOnly)) {
			t.Fatalf("the stale date was re-planned by itself: %s", m)
		}
	}
	logs.Reset()
	var out bytes.Buffer
	if err := run(ctx, []string{"status", "--verify"}, envconfig.MapLookuper(env), &out, &logs, app.WithClock(clock)); err != nil {
		t.Fatalf("status: %v", err)
	}
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("status does not report the stale date at ERROR:\n%s\n%s", out.String(), logs.String())
	}
}
