package main

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/testenv"
)

// A BigQuery endpoint that accepts connections and never answers makes
// the planner stop with an error naming BQ_ENDPOINT after the bounded
// probe, instead of waiting out its two-minute start.
func TestUnreachableBigQueryEndpoint(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool, `CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`)
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	endpoint := "http://" + ln.Addr().String() + "/bigquery/v2/"
	env := map[string]string{"PG_DSN": dsn, "BQ_PROJECT": "pgbq-test", "BQ_DATASET": "d", "BQ_ENDPOINT": endpoint, "SYNC_TABLE": "events"}
	// Longer than the probe, shorter than the start's own two minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = run(ctx, []string{"--dry-run"}, envconfig.MapLookuper(env), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "BQ_ENDPOINT "+endpoint+" did not answer") {
		t.Fatalf("planner with a silent endpoint: %v", err)
	}
}
