package loader

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// faultProxy sits between the loader and the emulator. Every nth request
// fails: before reaching the emulator (503 or 429), or after the emulator
// did the work but before the answer reaches the loader (the case that
// makes a retried load land twice).
func faultProxy(t *testing.T, target string, nth int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = ""
	rp := httputil.NewSingleHostReverseProxy(u)
	var n, injected atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if i%nth != 0 {
			rp.ServeHTTP(w, r)
			return
		}
		injected.Add(1)
		switch (i / nth) % 3 {
		case 0:
			http.Error(w, `{"error":{"code":503,"message":"injected: backend unavailable"}}`, http.StatusServiceUnavailable)
		case 1:
			http.Error(w, `{"error":{"code":429,"message":"injected: rate limited","errors":[{"reason":"rateLimitExceeded"}]}}`, http.StatusTooManyRequests)
		default:
			// Let the emulator do the work, then lose the answer.
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			http.Error(w, `{"error":{"code":500,"message":"injected: answer lost"}}`, http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &injected
}

// BigQuery answering 500, 503 and 429 — including after it has done the
// work — slows the sync down but loses and duplicates nothing.
func TestTransientBigQueryErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	first := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, first, 2, 200, true)
	s := r.open(40) // set up through the direct client
	proxy, injected := faultProxy(t, r.bq.Endpoint, 5)
	cfg := r.bq.Config()
	cfg.Endpoint = proxy.URL + "/bigquery/v2/"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := bq.NewClient(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if s.Warehouse, err = bq.NewWarehouse(client, cfg, "activity_logs", s.Source.Table()); err != nil {
		t.Fatal(err)
	}
	s.State = syncstate.New(client, cfg.Project, cfg.Dataset).WithClock(s.Now)
	for d := 0; d < 2; d++ {
		day := first.AddDate(0, 0, d)
		if got := r.syncUntilDone(s, day); got != Finished {
			t.Fatalf("day %d: outcome %v", d, got)
		}
		r.check(day)
	}
	if injected.Load() < 6 {
		t.Fatalf("only %d faults injected", injected.Load())
	}
	t.Logf("%d faults injected", injected.Load())
}
