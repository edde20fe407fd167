package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/loader"
	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// One table's column is retyped between two syncs, with two tables
// configured: the loader still starts, the planner still plans the other
// table and exits non-zero naming the broken one, a message already in
// flight for the broken table is recorded failed with the reason and
// acked (nothing is dead-lettered), the other table finishes every date,
// and status shows the broken table with its reason. Once the column is
// restored, the same loader syncs the table's next message.
func TestBrokenTableIsIsolated(t *testing.T) {
	t.Parallel()
	clock := testenv.Clock(t)
	dsn, pool := testenv.PG(t)
	first := civil.DateOf(clock()).AddDays(-4).In(time.UTC)
	for _, tbl := range []string{"t_other", "t_evo"} {
		testenv.Exec(t, pool,
			fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, b integer)`, tbl),
			fmt.Sprintf(`INSERT INTO %s SELECT g, TIMESTAMPTZ '%s' + g * interval '1 hour', g FROM generate_series(0, 71) g`, tbl, first.Format(time.RFC3339)))
	}
	b := testenv.BigQuery(t)
	ps := testenv.NewPubSub(t)
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"PUBSUB_EMULATOR_HOST": ps.Addr, "PUBSUB_PROJECT": "pgbq-test", "PUBSUB_TOPIC": "dates",
		"SYNC_TABLES": fmt.Sprintf(`[{"table":"t_other","chunk_size":10,"start_date":"%[1]s"},{"table":"t_evo","chunk_size":10,"start_date":"%[1]s"}]`,
			first.Format(time.DateOnly))}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := runLoaderOnce(ctx, env, clock, first); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, pool, `ALTER TABLE t_evo ALTER COLUMN b TYPE text`)

	// The loader, pulling from a subscription that dead-letters after two
	// attempts, starts although t_evo is broken.
	for _, s := range []*pubsubpb.Subscription{
		{Name: "projects/pgbq-test/subscriptions/dead-sub", Topic: "projects/pgbq-test/topics/dead"},
		{Name: "projects/pgbq-test/subscriptions/dates-loader", Topic: "projects/pgbq-test/topics/dates", AckDeadlineSeconds: 10,
			DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: "projects/pgbq-test/topics/dead", MaxDeliveryAttempts: 2}},
	} {
		if s.Name == "projects/pgbq-test/subscriptions/dead-sub" {
			if _, err := ps.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: s.Topic}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ps.Client.SubscriptionAdminClient.CreateSubscription(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var cfg Config
	if err := config.Load(ctx, &cfg, envconfig.MapLookuper(env)); err != nil {
		t.Fatal(err)
	}
	cfg.Common.Normalize()
	deps, err := app.Open(ctx, &cfg.Common, app.WithPublisher(), app.WithClock(clock))
	if err != nil {
		t.Fatalf("the loader does not start with one table broken: %v", err)
	}
	defer deps.Close()
	svc := &loader.Service{Syncers: map[string]*loader.Syncer{}, Pub: deps.Publisher, Budget: time.Minute}
	for _, tb := range deps.Tables {
		s, err := deps.NewSyncer(&cfg.Common, tb, "test-loader")
		if err != nil {
			t.Fatal(err)
		}
		svc.Syncers[tb.Config.DestTable] = s
	}
	loaderCtx, stopLoader := context.WithCancel(logging.With(ctx, logging.New(io.Discard, "info")))
	done := make(chan error, 1)
	go func() { done <- loader.Receive(loaderCtx, ps.Client.Subscriber("dates-loader"), svc, 2, 0) }()

	// A message for t_evo from before the change, still in flight.
	evoDay := first.AddDate(0, 0, 1)
	pub := ps.Client.Publisher("dates")
	defer pub.Stop()
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: fmt.Appendf(nil, `{"table":"t_evo","date":"%s"}`, evoDay.Format(time.DateOnly))}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, nil, envconfig.MapLookuper(env), io.Discard, io.Discard, app.WithClock(clock))
	if err == nil || !strings.Contains(err.Error(), "table t_evo") || !strings.Contains(err.Error(), `column 3 is "b" INTEGER in BigQuery but "b" STRING in the source`) {
		t.Fatalf("planner with t_evo retyped: err %v, want it to name t_evo and the change", err)
	}
	for _, m := range ps.Published() {
		if strings.Contains(m, `"t_evo"`) && !strings.Contains(m, evoDay.Format(time.DateOnly)) {
			t.Fatalf("the broken table was planned: %s", m)
		}
	}
	lastDay := civil.DateOf(first).AddDays(2)
	testenv.WaitFor(t, 3*time.Minute, "t_other's dates to finish and t_evo's message to be recorded failed", func() bool {
		select {
		case err := <-done:
			t.Fatalf("loader ended: %v", err)
		default:
		}
		other, err := deps.State.Latest(ctx, "t_other")
		if err != nil {
			t.Fatal(err)
		}
		for d := civil.DateOf(first); !d.After(lastDay); d = d.AddDays(1) {
			if !other[d].IsFinished {
				return false
			}
		}
		evo, err := deps.State.Latest(ctx, "t_evo")
		if err != nil {
			t.Fatal(err)
		}
		e := evo[civil.DateOf(evoDay)]
		return e.State == syncstate.StateFailed && strings.Contains(e.Detail, "destination schema mismatch")
	})
	// Plain status reads only sync_control: the failed date and its reason.
	var out bytes.Buffer
	if err := run(ctx, []string{"status", "--table", "t_evo"}, envconfig.MapLookuper(env), &out, io.Discard, app.WithClock(clock)); err != nil {
		t.Fatalf("status: %v", err)
	}
	if want := evoDay.Format(time.DateOnly) + "  failed"; !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "destination schema mismatch") {
		t.Fatalf("status lacks %q with the reason:\n%s", want, out.String())
	}
	// With --verify it opens the tables: the broken one with its reason.
	out.Reset()
	err = run(ctx, []string{"status", "--verify"}, envconfig.MapLookuper(env), &out, io.Discard, app.WithClock(clock))
	if err == nil {
		t.Fatalf("status with a broken table exits 0:\n%s", out.String())
	}
	for _, want := range []string{"table t_evo\nBROKEN: table t_evo: destination schema mismatch", "source_rows=72 bigquery_rows=72", "tables=1 broken=1"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("status lacks %q:\n%s", want, out.String())
		}
	}
	// The column restored, the running loader syncs the table again with
	// the next message: no restart.
	testenv.Exec(t, pool, `ALTER TABLE t_evo ALTER COLUMN b TYPE integer USING b::integer`)
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: fmt.Appendf(nil, `{"table":"t_evo","date":"%s"}`, evoDay.Format(time.DateOnly))}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "t_evo's date to finish once the column is restored", func() bool {
		evo, err := deps.State.Latest(ctx, "t_evo")
		if err != nil {
			t.Fatal(err)
		}
		return evo[civil.DateOf(evoDay)].IsFinished
	})
	stopLoader()
	<-done

	// Every message was acked: nothing reaches the dead-letter topic.
	drainCtx, drainCancel := context.WithTimeout(ctx, 3*time.Second)
	defer drainCancel()
	var mu sync.Mutex
	var dead []string
	_ = ps.Client.Subscriber("dead-sub").Receive(drainCtx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		dead = append(dead, string(m.Data))
		mu.Unlock()
	})
	if len(dead) > 0 {
		t.Fatalf("dead-lettered: %v", dead)
	}
}

// A destination belongs to the source table pgbq made it for: another
// deployment whose table of the same name (another schema) would write
// into it is refused for that table only, saying how to name another
// destination; the destination's own table goes on.
func TestDestinationBelongsToOneSource(t *testing.T) {
	t.Parallel()
	clock := testenv.Clock(t)
	dsn, pool := testenv.PG(t)
	day := civil.DateOf(clock()).AddDays(-1)
	testenv.Exec(t, pool, `CREATE SCHEMA sales`)
	for _, tbl := range []string{"sales.orders", "public.orders", "clicks", "legacy"} {
		testenv.Exec(t, pool,
			fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`, tbl),
			fmt.Sprintf(`INSERT INTO %s VALUES (1, '%s 12:00+00')`, tbl, day))
	}
	b := testenv.BigQuery(t)
	env := func(kv ...string) envconfig.Lookuper {
		m := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return envconfig.MapLookuper(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dryRun := func(l envconfig.Lookuper) (string, error) {
		var out bytes.Buffer
		err := run(ctx, []string{"--dry-run"}, l, &out, io.Discard, app.WithClock(clock))
		return out.String(), err
	}
	a := env("SYNC_TABLE", "sales.orders")
	if out, err := dryRun(a); err != nil {
		t.Fatalf("first deployment: %v\n%s", err, out)
	}
	out, err := dryRun(env("SYNC_TABLES", `[{"table":"public.orders"},{"table":"clicks"}]`))
	for _, want := range []string{`destination belongs to another source table: BigQuery table`, `(its description: "Synced by pgbq from PostgreSQL table \"sales\".\"orders\".")`,
		`not of "public"."orders": set dest_table in SYNC_TABLES`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("second deployment into the same destination: err %v, want it to contain %q", err, want)
		}
	}
	if !strings.Contains(out, "clicks  "+day.String()) || strings.Contains(out, "orders  "+day.String()) {
		t.Fatalf("the other table is not planned, or the refused one is:\n%s", out)
	}
	// The destination's own table is still welcome.
	if out, err := dryRun(a); err != nil || !strings.Contains(out, "orders  "+day.String()) {
		t.Fatalf("first deployment again: %v\n%s", err, out)
	}
	// A destination made without the label (an older pgbq) is claimed by
	// the first table that opens it, and then refused to any other.
	legacy := b.Client.Dataset(b.Dataset).Table("legacy")
	if err := legacy.Create(ctx, &bigquery.TableMetadata{Schema: bigquery.Schema{
		{Name: "id", Type: bigquery.IntegerFieldType}, {Name: "created_at", Type: bigquery.TimestampFieldType}}}); err != nil {
		t.Fatal(err)
	}
	if out, err := dryRun(env("SYNC_TABLE", "legacy")); err != nil {
		t.Fatalf("unlabelled destination: %v\n%s", err, out)
	}
	meta, err := legacy.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Labels[bq.SourceLabel] == "" || meta.Description != `Synced by pgbq from PostgreSQL table "public"."legacy".` {
		t.Fatalf("unlabelled destination not claimed: labels %v, description %q", meta.Labels, meta.Description)
	}
	if _, err := dryRun(env("SYNC_TABLE", "public.orders", "SYNC_DEST_TABLE", "legacy")); err == nil || !strings.Contains(err.Error(), "destination belongs to another source table") {
		t.Fatalf("claimed destination opened for another table: %v", err)
	}
}
