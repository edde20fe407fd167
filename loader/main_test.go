package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/cli"
	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/docscheck"
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
		// The password would go to a server nobody verified (issue 28).
		{"remote DSN with sslmode=require", map[string]string{"PG_DSN": "host=db.example.com user=x dbname=x password=s3cret-pw sslmode=require"}, nil, "PG_DSN: the connection to db.example.com does not verify the server"},
		{"remote DSN without sslmode", map[string]string{"PG_DSN": "postgres://x:s3cret-pw@10.20.0.5/x"}, nil, "PG_ALLOW_UNVERIFIED_TLS=true"},
		{"DSN past the pinned host", nil, []string{"--pin=PG_HOST=10.20.0.5"}, `PG_DSN connects to host "127.0.0.1", but the deployment pins PG_HOST="10.20.0.5"`},
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
			if code := cli.Code(err); code != cli.ExitUsage {
				t.Fatalf("exit code %d, want %d (usage or configuration)", code, cli.ExitUsage)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// -h prints flags, variables and examples and exits 0; a bad flag or a
// stray argument exits 2.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"-h"}, envconfig.MapLookuper(baseEnv()), &out)
	if cli.Code(err) != cli.ExitOK {
		t.Fatalf("-h: exit %d (%v)", cli.Code(err), err)
	}
	for _, want := range []string{"--pull", "--date", "--exit-when-idle", "LOADER_BUDGET", "PG_DSN", "Exit codes:", "Examples:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	for _, args := range [][]string{{"--nope"}, {"stray"}, {"--table", "t"}, {"--date", "yesterday"}} {
		if err := run(context.Background(), args, envconfig.MapLookuper(baseEnv()), io.Discard); cli.Code(err) != cli.ExitUsage {
			t.Errorf("%q: exit %d (%v), want %d", args, cli.Code(err), err, cli.ExitUsage)
		}
	}
}

// Columns that do not exist, or cannot be synced, fail the table's dates
// with the variable or the column named; the loader itself starts.
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
		// The loader starts whatever a table's state is; a date of a
		// broken table fails naming what to fix.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := run(ctx, []string{"--date", "2024-05-01"}, envconfig.MapLookuper(env), io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: run error = %v, want it to contain %q", tc.change, err, tc.want)
		}
	}
}

// docs/configuration.md documents every variable the loader reads, and
// the docs show every flag of loader -h, and no other.
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
	var help bytes.Buffer
	if err := run(t.Context(), []string{"-h"}, nil, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("loader -h: %v", err)
	}
	if strings.Contains(help.String(), "\n  3 ") {
		t.Errorf("loader -h lists exit code 3, which the loader never returns:\n%s", help.String())
	}
	prog := docscheck.Program{Name: "loader", Flags: docscheck.FlagsInHelp(help.String())}
	if len(prog.Flags) < 4 {
		t.Fatalf("loader -h lists %q as its flags:\n%s", prog.Flags, help.String())
	}
	for _, p := range prog.CommandProblems(docscheck.Load(t, root, docscheck.Pages(t, root))) {
		t.Error(p)
	}
	for _, p := range prog.Undocumented(docscheck.Load(t, root, []string{"docs/cli.md"})) {
		t.Error("docs/cli.md: " + p)
	}
}

// SIGTERM (the context run gets from signal.NotifyContext) in the middle
// of a date: the in-flight request answers 503 so Pub/Sub redelivers, the
// loader is gone before Cloud Run's SIGKILL 10 s later, and the date
// resumes and finishes with every row once.
func TestShutdownLeavesDateResumable(t *testing.T) {
	t.Parallel()
	clock := testenv.Clock(t)
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool, `CREATE TABLE activity_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text)`,
		`CREATE INDEX ON activity_logs (created_at, id)`,
		`INSERT INTO activity_logs SELECT g, TIMESTAMPTZ '2024-05-01' + g * interval '1 second', repeat('x', 50) FROM generate_series(1, 40000) g`)
	b := testenv.BigQuery(t)
	// PORT=0: the loader holds whatever port it gets and logs it, so no
	// other process can take the port between choosing and listening.
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": b.Endpoint,
		"SYNC_TABLE": "activity_logs", "SYNC_CHUNK_SIZE": "500", "PUBSUB_TOPIC": "dates", "PORT": "0",
		"PUBSUB_EMULATOR_HOST": "127.0.0.1:1"}
	var logs syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("loader logs:\n%s", logs.String())
		}
	})
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envconfig.MapLookuper(env), &logs, app.WithClock(clock)) }()
	running := func() {
		select {
		case err := <-done:
			t.Fatalf("loader ended early: %v\n%s", err, logs.String())
		default:
		}
	}
	var port string
	testenv.WaitFor(t, 2*time.Minute, "the loader to listen", func() bool {
		running()
		port = loggedPort(logs.String())
		return port != ""
	})

	body, _ := json.Marshal(map[string]any{"message": map[string]any{"data": []byte(`{"table":"activity_logs","date":"2024-05-01"}`), "messageId": "7"}})
	status := make(chan int, 1)
	go func() {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://127.0.0.1:"+port+"/", bytes.NewReader(body))
		if err != nil {
			status <- 0
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	// SIGTERM once a few chunks are staged.
	testenv.WaitFor(t, 5*time.Minute, "three chunks staged", func() bool {
		running()
		return strings.Contains(logs.String(), `"chunk":3,`)
	})
	sigterm()
	// Cloud Run kills 10 s after SIGTERM; the loader's own shutdown
	// deadline (8 s) keeps it inside that. What the test asserts is the
	// behaviour: it exits cleanly, the request is told to come again, and
	// the date resumes.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after SIGTERM: %v", err)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("loader did not exit after SIGTERM")
	}
	if code := <-status; code != http.StatusServiceUnavailable {
		t.Fatalf("in-flight request answered %d, want 503 (redeliver)", code)
	}
	// Redelivery, to a new loader process: `loader --date`, which needs no
	// Pub/Sub settings at all.
	once := maps.Clone(env)
	delete(once, "PUBSUB_TOPIC")
	delete(once, "PUBSUB_EMULATOR_HOST")
	if err := run(context.Background(), []string{"--date", "2024-05-01"}, envconfig.MapLookuper(once), io.Discard, app.WithClock(clock)); err != nil {
		t.Fatal(err)
	}
	it, err := bq.RunQuery(context.Background(), b.Client, fmt.Sprintf("SELECT COUNT(*), COUNT(DISTINCT id) FROM `%s.%s.activity_logs`", b.Project, b.Dataset))
	if err != nil {
		t.Fatal(err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		t.Fatal(err)
	}
	var want int64
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM activity_logs WHERE created_at < '2024-05-02'`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if row[0] != want || row[1] != want {
		t.Fatalf("BigQuery holds %v rows (%v distinct), want %d", row[0], row[1], want)
	}
}

// loggedPort is the port of the loader's "serving push requests" log
// line, or "" before it is logged.
func loggedPort(logs string) string {
	for _, line := range strings.Split(logs, "\n") {
		var rec struct{ Message, Port string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Message == "serving push requests" {
			return rec.Port
		}
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A message that keeps failing (BigQuery unavailable for good) is
// redelivered, logged with the reason each time, and ends in the
// dead-letter topic after the subscription's attempts.
func TestPoisonMessageIsDeadLettered(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool, `CREATE TABLE activity_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`,
		`INSERT INTO activity_logs SELECT g, TIMESTAMPTZ '2024-05-01' + g * interval '1 minute' FROM generate_series(1, 100) g`)
	b := testenv.BigQuery(t)
	// BigQuery through a switch: healthy for start-up, then rate limiting
	// every request (429: the client library does not retry it by itself,
	// pgbq does, then gives up and lets Pub/Sub redeliver).
	var down atomic.Bool
	target, _ := url.Parse(b.Endpoint)
	target.Path = ""
	rp := httputil.NewSingleHostReverseProxy(target)
	bqsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, `{"error":{"code":429,"message":"quota exceeded"}}`, http.StatusTooManyRequests)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer bqsrv.Close()

	ps := testenv.NewPubSub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, name := range []string{"dead"} {
		if _, err := ps.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/pgbq-test/topics/" + name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ps.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/pgbq-test/subscriptions/dead-sub", Topic: "projects/pgbq-test/topics/dead"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/pgbq-test/subscriptions/dates-loader", Topic: "projects/pgbq-test/topics/dates", AckDeadlineSeconds: 10,
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: "projects/pgbq-test/topics/dead", MaxDeliveryAttempts: 5},
	}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": b.Project, "BQ_DATASET": b.Dataset, "BQ_ENDPOINT": bqsrv.URL + "/bigquery/v2/",
		"SYNC_TABLE": "activity_logs", "PUBSUB_TOPIC": "dates", "PUBSUB_SUBSCRIPTION": "dates-loader",
		"PUBSUB_PROJECT": "pgbq-test", "PUBSUB_EMULATOR_HOST": ps.Addr}
	var logs syncBuffer
	loaderCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(loaderCtx, []string{"--pull"}, envconfig.MapLookuper(env), &logs, app.WithClock(testenv.Clock(t)))
	}()
	testenv.WaitFor(t, 2*time.Minute, "the loader to pull", func() bool {
		select {
		case err := <-done:
			t.Fatalf("loader ended: %v\n%s", err, logs.String())
		default:
		}
		return strings.Contains(logs.String(), `"pulling"`)
	})
	down.Store(true)
	pub := ps.Client.Publisher("dates")
	defer pub.Stop()
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte(`{"table":"activity_logs","date":"2024-05-01"}`)}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go ps.Client.Subscriber("dead-sub").Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		select {
		case got <- string(m.Data):
		default:
		}
	})
	select {
	case data := <-got:
		if data != `{"table":"activity_logs","date":"2024-05-01"}` {
			t.Fatalf("dead letter = %s", data)
		}
	case <-ctx.Done():
		t.Fatalf("no dead letter; logs:\n%s", logs.String())
	}
	stop()
	<-done
	l := logs.String()
	if !strings.Contains(l, "date interrupted, will be redelivered") || !strings.Contains(l, "429") || !strings.Contains(l, `"delivery_attempt":5`) {
		t.Fatalf("the failures are not logged with their reason and attempt:\n%s", l)
	}
}
