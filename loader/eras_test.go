package main

import (
	"context"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// Empty days of any era within the table's range (SYNC_START_DATE
// 0001-01-01) end within seconds, recorded finished: `loader --date` for
// year 1 and for the day before the Unix epoch returns, and a pulled
// message for each is acked and recorded and the loader goes idle and
// exits. Such a day used to wait in the publish queue for ever: its lock
// key read back from pg_locks as another date.
func TestDatesOfEveryEraEnd(t *testing.T) {
	t.Parallel()
	clock := testenv.Clock(t)
	days := []civil.Date{{Year: 1, Month: 1, Day: 1}, {Year: 1969, Month: 12, Day: 31}}
	newEnv := func() (map[string]string, *syncstate.Store) {
		dsn, pool := testenv.PG(t)
		testenv.Exec(t, pool, `CREATE TABLE activity_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`,
			`INSERT INTO activity_logs SELECT g, TIMESTAMPTZ '2024-05-01' + g * interval '1 minute' FROM generate_series(1, 10) g`)
		b := testenv.BigQuery(t)
		return map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
			"SYNC_TABLE": "activity_logs", "SYNC_START_DATE": "0001-01-01"}, syncstate.New(b.Client, b.Project, b.Dataset)
	}
	finished := func(t *testing.T, st *syncstate.Store, how string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, d := range days {
			e, _, err := st.Date(ctx, "activity_logs", d)
			if err != nil {
				t.Fatal(err)
			}
			if !e.IsFinished || e.Date != d || e.SourceRows != 0 {
				t.Errorf("%s %s: sync_control holds %+v, want it finished with 0 rows", how, d, e)
			}
		}
	}

	t.Run("date", func(t *testing.T) {
		t.Parallel()
		env, st := newEnv()
		for _, d := range days {
			// A hang shows as this deadline passing.
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			err := run(ctx, []string{"--date", d.String()}, envconfig.MapLookuper(env), io.Discard, app.WithClock(clock))
			cancel()
			if err != nil {
				t.Fatalf("loader --date %s: %v", d, err)
			}
		}
		finished(t, st, "loader --date")
	})

	t.Run("pull", func(t *testing.T) {
		t.Parallel()
		env, st := newEnv()
		ps := testenv.NewPubSub(t)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if _, err := ps.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: "projects/pgbq-test/subscriptions/dates-loader", Topic: "projects/pgbq-test/topics/dates", AckDeadlineSeconds: 10,
		}); err != nil {
			t.Fatal(err)
		}
		pub := ps.Client.Publisher("dates")
		defer pub.Stop()
		for _, d := range days {
			if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte(`{"table":"activity_logs","date":"` + d.String() + `"}`)}).Get(ctx); err != nil {
				t.Fatal(err)
			}
		}
		pullEnv := maps.Clone(env)
		maps.Copy(pullEnv, map[string]string{"PUBSUB_TOPIC": "dates", "PUBSUB_SUBSCRIPTION": "dates-loader",
			"PUBSUB_PROJECT": "pgbq-test", "PUBSUB_EMULATOR_HOST": ps.Addr})
		var logs syncBuffer
		// --exit-when-idle: the loader returns once both are worked; a
		// date that never ends keeps it busy past the deadline.
		if err := run(ctx, []string{"--pull", "--exit-when-idle", "2s"}, envconfig.MapLookuper(pullEnv), &logs, app.WithClock(clock)); err != nil {
			t.Fatalf("loader --pull: %v\n%s", err, logs.String())
		}
		if ctx.Err() != nil {
			t.Fatalf("the loader did not go idle: %s", lastLines(logs.String(), 20))
		}
		if n := strings.Count(logs.String(), `"outcome":"finished"`); n != len(days) {
			t.Fatalf("%d dates finished, want %d:\n%s", n, len(days), lastLines(logs.String(), 20))
		}
		finished(t, st, "pulled")
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
