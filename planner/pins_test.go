package main

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/cli"
)

// passwordCatcher is a server that speaks just enough of PostgreSQL's
// protocol to ask for the password in clear text, as a server an operator
// controls would: the one thing a real PostgreSQL cannot show, what a
// client sent it. It records every password and every connection.
type passwordCatcher struct {
	ln        net.Listener
	mu        sync.Mutex
	conns     int
	passwords []string
}

func newPasswordCatcher(t *testing.T) *passwordCatcher {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &passwordCatcher{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns++
			c.mu.Unlock()
			go c.serve(conn)
		}
	}()
	return c
}

func (c *passwordCatcher) serve(conn net.Conn) {
	defer conn.Close()
	be := pgproto3.NewBackend(conn, conn)
	msg, err := be.ReceiveStartupMessage()
	if _, ssl := msg.(*pgproto3.SSLRequest); err == nil && ssl {
		if _, err := conn.Write([]byte("N")); err != nil {
			return
		}
		msg, err = be.ReceiveStartupMessage()
	}
	if _, ok := msg.(*pgproto3.StartupMessage); err != nil || !ok {
		return
	}
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if be.Flush() != nil {
		return
	}
	if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return
	}
	if m, err := be.Receive(); err == nil {
		if pw, ok := m.(*pgproto3.PasswordMessage); ok {
			c.mu.Lock()
			c.passwords = append(c.passwords, pw.Password)
			c.mu.Unlock()
		}
	}
}

func (c *passwordCatcher) port() string {
	return strconv.Itoa(c.ln.Addr().(*net.TCPAddr).Port)
}

func (c *passwordCatcher) seen() (conns int, passwords []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns, append([]string(nil), c.passwords...)
}

// deployedPins are the pins Terraform puts in the planner job's command
// (terraform/modules/planner) for a PostgreSQL at 10.20.0.5.
var deployedPins = []string{
	"--pin=PG_HOST=10.20.0.5", "--pin=PG_PORT=5432", "--pin=PG_ALLOW_UNVERIFIED_TLS=false",
	"--pin=BQ_PROJECT=pgbq-prod", "--pin=BQ_ENDPOINT=", "--pin=BQ_DATASET=pgbq_prod",
	"--pin=BQ_STAGING_DATASET=pgbq_prod_staging", "--pin=BQ_STATE_DATASET=pgbq_prod_state",
	"--pin=PUBSUB_PROJECT=pgbq-prod",
}

// An operator who may run the planner job with overrides points PG_DSN at
// a server of their own: with the deployment's pins, the planner refuses
// before it connects anywhere, and the server never sees the password
// (nor a connection). Without pins (the same run on a laptop) the same
// configuration does send it there, which is what the pins prevent.
func TestOverriddenDSNDoesNotGetThePassword(t *testing.T) {
	t.Parallel()
	catcher := newPasswordCatcher(t)
	const secret = "s3cret-from-secret-manager"
	env := map[string]string{
		// The override: the operator's host (loopback here, so that the
		// TLS check lets the unpinned control run connect).
		"PG_DSN":             "host=127.0.0.1 port=" + catcher.port() + " user=pgbq dbname=app sslmode=disable",
		"PG_PASSWORD":        secret,
		"SYNC_TABLE":         "activity_logs",
		"BQ_PROJECT":         "pgbq-prod",
		"BQ_DATASET":         "pgbq_prod",
		"BQ_STAGING_DATASET": "pgbq_prod_staging",
		"BQ_STATE_DATASET":   "pgbq_prod_state",
		"PUBSUB_PROJECT":     "pgbq-prod",
		"PUBSUB_TOPIC":       "pgbq-prod-dates",
	}
	ctx := context.Background()
	for _, cmd := range [][]string{{"check"}, {"status"}, {"verify", "--repair"}, {"resync", "--table", "t", "--from", "2024-01-01"}, {}} {
		err := run(ctx, append(append([]string(nil), deployedPins...), cmd...), envconfig.MapLookuper(env), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), `PG_DSN connects to host "127.0.0.1", but the deployment pins PG_HOST="10.20.0.5"`) {
			t.Errorf("planner %v with an overridden PG_DSN: %v, want it refused naming PG_DSN and PG_HOST", cmd, err)
		}
		if cli.Code(err) != cli.ExitUsage {
			t.Errorf("planner %v: exit code %d, want %d", cmd, cli.Code(err), cli.ExitUsage)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("planner %v: the error shows the password", cmd)
		}
	}
	// check without BQ_DATASET reads PostgreSQL only, before anything else:
	// without pins it would connect (the control below).
	local := map[string]string{"PG_DSN": env["PG_DSN"], "PG_PASSWORD": secret, "SYNC_TABLE": env["SYNC_TABLE"]}
	if err := run(ctx, []string{"--pin=PG_HOST=10.20.0.5", "--pin=PG_PORT=5432", "check"}, envconfig.MapLookuper(local), io.Discard, io.Discard); errPinned(err) == nil {
		t.Errorf("planner check with an overridden PG_DSN: %v, want it refused by the pins", err)
	}
	if conns, pws := catcher.seen(); conns != 0 || len(pws) != 0 {
		t.Fatalf("with pins, the operator's server saw %d connections and passwords %q", conns, pws)
	}

	// The control: no pins, and the password does reach that server.
	if err := run(ctx, []string{"check"}, envconfig.MapLookuper(local), io.Discard, io.Discard); err == nil {
		t.Fatal("check against the catcher succeeded")
	}
	if _, pws := catcher.seen(); len(pws) != 1 || pws[0] != secret {
		t.Fatalf("without pins the server received passwords %q, want the secret once (the test could not tell a refusal from a miss)", pws)
	}

	// The pinned host itself gets it: pins that match let the run through.
	matching := []string{"--pin=PG_HOST=127.0.0.1", "--pin=PG_PORT=" + catcher.port(), "--pin=BQ_ENDPOINT="}
	if err := run(ctx, append(matching, "check"), envconfig.MapLookuper(local), io.Discard, io.Discard); err == nil || errPinned(err) != nil {
		t.Fatalf("check with matching pins: %v, want it to reach the server (and fail there)", err)
	}
	if _, pws := catcher.seen(); len(pws) != 2 {
		t.Fatalf("with matching pins the pinned server received %d passwords, want 2 in all", len(pws))
	}
}

// errPinned is err when it is a refusal by the pins, else nil.
func errPinned(err error) error {
	if err != nil && strings.Contains(err.Error(), "differs from what this deployment pins") {
		return err
	}
	return nil
}

// Every other way an override could send the rows or the token elsewhere
// is refused under pins too: a pin given again in the override's own
// arguments, another BigQuery endpoint or project, unverified TLS allowed,
// a proxy or a CA file for the client libraries, another port.
func TestOverridesPastThePinsRefused(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"PG_DSN":             "host=10.20.0.5 port=5432 user=pgbq dbname=app sslmode=verify-full",
		"PG_PASSWORD":        "s3cret",
		"SYNC_TABLE":         "activity_logs",
		"BQ_PROJECT":         "pgbq-prod",
		"BQ_DATASET":         "pgbq_prod",
		"BQ_STAGING_DATASET": "pgbq_prod_staging",
		"BQ_STATE_DATASET":   "pgbq_prod_state",
		"PUBSUB_PROJECT":     "pgbq-prod",
		"PUBSUB_TOPIC":       "pgbq-prod-dates",
	}
	cases := []struct {
		name   string
		change map[string]string
		args   []string
		want   string
	}{
		{"pin given again", nil, []string{"--pin=PG_HOST=evil.example.com", "status"}, "--pin=PG_HOST is given twice"},
		{"unknown pin", nil, []string{"--pin=SYNC_TABLE=users", "status"}, "NAME one of"},
		{"other port", map[string]string{"PG_DSN": "host=10.20.0.5 port=6543 user=pgbq dbname=app sslmode=verify-full"}, nil, `PG_DSN connects to port "6543"`},
		{"fallback host", map[string]string{"PG_DSN": "host=10.20.0.5,evil.example.com user=pgbq dbname=app sslmode=verify-full"}, nil, `PG_DSN connects to host "evil.example.com"`},
		{"BigQuery endpoint", map[string]string{"BQ_ENDPOINT": "https://evil.example.com/bigquery/v2/"}, []string{"verify", "--repair"}, `BQ_ENDPOINT is "https://evil.example.com/bigquery/v2/", but the deployment pins BQ_ENDPOINT=""`},
		{"BigQuery project", map[string]string{"BQ_PROJECT": "evil-project"}, []string{"verify", "--repair"}, "BQ_PROJECT"},
		{"staging dataset", map[string]string{"BQ_STAGING_DATASET": "elsewhere"}, []string{"verify", "--repair"}, "BQ_STAGING_DATASET"},
		{"unverified TLS", map[string]string{"PG_ALLOW_UNVERIFIED_TLS": "true"}, nil, "PG_ALLOW_UNVERIFIED_TLS"},
		{"proxy", map[string]string{"HTTPS_PROXY": "http://evil.example.com:3128"}, nil, "HTTPS_PROXY is set"},
		{"CA file", map[string]string{"SSL_CERT_FILE": "/proc/self/environ"}, nil, "SSL_CERT_FILE is set"},
		{"emulator host", map[string]string{"BIGQUERY_EMULATOR_HOST": "evil.example.com:9050"}, nil, "BIGQUERY_EMULATOR_HOST is set"},
	}
	for _, tc := range cases {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.change {
			env[k] = v
		}
		args := append(append([]string(nil), deployedPins...), tc.args...)
		if tc.args == nil {
			args = append(args, "status")
		}
		err := run(context.Background(), args, envconfig.MapLookuper(env), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
		if cli.Code(err) != cli.ExitUsage {
			t.Errorf("%s: exit code %d, want %d", tc.name, cli.Code(err), cli.ExitUsage)
		}
	}
}
