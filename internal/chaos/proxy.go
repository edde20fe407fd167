package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/syncstate"
)

// Fault kinds, as counted in the report.
const (
	KillExtract   = "kill -9: mid-chunk (load in flight, next chunk being read)"
	KillAfterLoad = "kill -9: after a load job, before its checkpoint"
	KillPublish   = "kill -9: during publish"
	KillFinish    = "kill -9: during the finish step"
	BQ500         = "BigQuery answers 500"
	BQ503         = "BigQuery answers 503"
	BQ429         = "BigQuery answers 429"
	BQTimeout     = "BigQuery times out"
	PGRestart     = "PostgreSQL restarted mid-chunk"
	DupDelivery   = "message delivered 3 times (2 at once)"
	TwoPlanners   = "two planners at once"
	LateFinished  = "rows inserted into a finished date"
	LateBelowCkpt = "row committed late below an unfinished date's checkpoint"
	SigtermLoader = "SIGTERM to a loader mid-date"
	// BigQuery's nemeses (nemesis.go).
	KillRequester  = "kill -9: requester of a job held PENDING"
	RedeliverStale = "finished date delivered again while a stale publish was pending"
	PGRestartLocks = "PostgreSQL restarted while write tokens and claims were held"
	SchemaChange   = "column added to the source, filled in new rows"
)

// Kinds lists the fault kinds in report order.
var Kinds = []string{KillExtract, KillAfterLoad, KillPublish, KillFinish, BQ500, BQ503, BQ429, BQTimeout,
	PGRestart, DupDelivery, TwoPlanners, LateFinished, LateBelowCkpt, SigtermLoader,
	KillRequester, RedeliverStale, PGRestartLocks, SchemaChange}

// proxy sits between one loader process and the BigQuery emulator. It
// recognises what the loader is doing from its requests, and at the
// moments the harness asks for it kills the loader or fails the request.
type proxy struct {
	h     *harness
	srv   *httptest.Server
	rp    *httputil.ReverseProxy
	mu    sync.Mutex
	proc  *os.Process // the loader process behind this proxy, while it runs
	inc   int         // how many processes ran behind this proxy: which one proc is
	armed bool        // a load answered: the next checkpoint may be held
}

// setProc records the running loader (nil once it has exited).
func (p *proxy) setProc(proc *os.Process) {
	p.mu.Lock()
	p.proc = proc
	if proc != nil {
		p.inc++
	}
	p.mu.Unlock()
}

// running says whether process inc still runs behind this proxy.
func (p *proxy) running(inc int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc != nil && p.inc == inc
}

// killIf kills process inc if it still runs: the requester of a held job
// dies while the job is pending.
func (p *proxy) killIf(inc int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil && p.inc == inc && p.proc.Signal(syscall.SIGKILL) == nil {
		p.proc = nil
		p.h.count(KillRequester)
		return true
	}
	return false
}

// signal sends sig to the running loader; false if none runs.
func (p *proxy) signal(sig os.Signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return false
	}
	if sig == syscall.SIGKILL {
		defer func() { p.proc = nil }()
	}
	return p.proc.Signal(sig) == nil
}

func newProxy(h *harness, target string) *proxy {
	u, _ := url.Parse(target)
	u.Path = ""
	p := &proxy{h: h, rp: httputil.NewSingleHostReverseProxy(u)}
	// A killed loader cancels its requests mid-flight: expected, not news.
	p.rp.ErrorLog = log.New(io.Discard, "", 0)
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	return p
}

// Endpoint is the BigQuery endpoint the loader is given.
func (p *proxy) Endpoint() string { return p.srv.URL + "/bigquery/v2/" }

func (p *proxy) Close() { p.srv.Close() }

func (p *proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	kind := classify(r, body)
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/jobs") {
		p.h.noteRequester(p, body) // before the job exists
	}
	if r.Method == http.MethodPost && (strings.HasSuffix(r.URL.Path, "/jobs") || strings.HasSuffix(r.URL.Path, "/queries")) &&
		bytes.Contains(body, []byte(syncstate.View)) && p.h.nem.layer.HiddenRows(p.h.opt.BQProject, p.h.opt.Dataset, syncstate.LogTable) > 0 {
		p.h.nemAdd(func(n *Nemesis) { n.HiddenStateReads++ })
	}

	// Kills at the moments the loader's protocol cares about.
	switch kind {
	case "load":
		if p.h.want(KillExtract) {
			p.killAfter(KillExtract, 50*time.Millisecond) // dies while this load is in flight
		}
		if p.h.pgRestartWanted() {
			go p.h.restartPG(context.WithoutCancel(r.Context())) // outlives this request
		}
	case "checkpoint":
		if d, ok := checkpointDate(body); ok && p.h.injected(LateBelowCkpt) < 2 && p.h.lateDue() {
			if err := p.h.lateBelowCheckpoint(r.Context(), d); err != nil {
				p.h.logf("late row: %v", err)
			}
		}
		p.mu.Lock()
		armed := p.armed
		p.armed = false
		p.mu.Unlock()
		if armed && p.h.want(KillAfterLoad) && p.killNow(KillAfterLoad) {
			http.Error(w, "killed", http.StatusServiceUnavailable)
			return
		}
	case "publish":
		if p.h.want(KillPublish) && p.killNow(KillPublish) {
			// Killed with the publish sent: BigQuery still runs it.
			p.rp.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(w, "killed", http.StatusServiceUnavailable)
			return
		}
	case "finish":
		if p.h.want(KillFinish) && p.killNow(KillFinish) {
			http.Error(w, "killed", http.StatusServiceUnavailable)
			return
		}
	}

	// Transient failures, on a small share of requests, by schedule.
	if f, ok := p.h.transientFault(); ok {
		switch f {
		case BQ500:
			p.h.count(f)
			// The work is done, the answer lost: the nastiest kind.
			p.rp.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(w, `{"error":{"code":500,"message":"chaos: internal error"}}`, http.StatusInternalServerError)
			return
		case BQ503:
			p.h.count(f)
			http.Error(w, `{"error":{"code":503,"message":"chaos: unavailable"}}`, http.StatusServiceUnavailable)
			return
		case BQ429:
			p.h.count(f)
			http.Error(w, `{"error":{"code":429,"message":"chaos: rate limited","errors":[{"reason":"rateLimitExceeded"}]}}`, http.StatusTooManyRequests)
			return
		case BQTimeout:
			p.h.count(f)
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
			http.Error(w, `{"error":{"code":504,"message":"chaos: deadline exceeded"}}`, http.StatusGatewayTimeout)
			return
		}
	}
	rec := httptest.NewRecorder()
	p.rp.ServeHTTP(rec, r)
	if kind == "load" && rec.Code == http.StatusOK {
		p.mu.Lock()
		p.armed = true
		p.mu.Unlock()
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// killNow kills the loader and counts kind if a loader was running.
func (p *proxy) killNow(kind string) bool {
	if p.signal(syscall.SIGKILL) {
		p.h.count(kind)
		return true
	}
	return false
}

func (p *proxy) killAfter(kind string, d time.Duration) {
	go func() {
		time.Sleep(time.Duration(rand.Int64N(int64(d))))
		p.killNow(kind)
	}()
}

// checkpointDate is the sync_date of an in_progress checkpoint insert.
func checkpointDate(body []byte) (civil.Date, bool) {
	var req struct {
		Rows []struct {
			JSON map[string]any `json:"json"`
		} `json:"rows"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.Rows) != 1 || req.Rows[0].JSON["state"] != "in_progress" {
		return civil.Date{}, false
	}
	s, _ := req.Rows[0].JSON["sync_date"].(string)
	d, err := civil.ParseDate(s)
	return d, err == nil
}

// classify names a loader request by what it does in pgbq's protocol.
func classify(r *http.Request, body []byte) string {
	switch {
	case strings.HasPrefix(r.URL.Path, "/upload/"):
		return "load"
	case strings.HasSuffix(r.URL.Path, "/insertAll"):
		if bytes.Contains(body, []byte(`"finished"`)) {
			return "finish"
		}
		return "checkpoint"
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/jobs") &&
		bytes.Contains(body, []byte("MERGE ")):
		// The publish: a MERGE replacing days of the destination.
		return "publish"
	}
	return "other"
}
