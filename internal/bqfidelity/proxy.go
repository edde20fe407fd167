// Package bqfidelity is an HTTP proxy in front of the bqemulator BigQuery
// emulator that makes BigQuery's documented behaviour testable here: jobs
// that are asynchronous, 409 on a reused job id, job failures delivered as
// status.errorResult, transaction conflicts, DML concurrency, metadata and
// partition quotas, partition decorators, and best-effort streaming
// de-duplication. It must never be kinder than the real service: every rule
// cites the documentation page it follows, and where a page can be read two
// ways the stricter reading is modelled.
//
// Everything it does not model passes through to the emulator unchanged.
//
// For multi-process runs (dev/bqfidelity) two more paths exist on the
// proxy's address: GET /fidelity/stats answers Stats as JSON, and POST
// /fidelity/inject takes a Fault as JSON ({"Kind":"copy","Count":1,…}).
package bqfidelity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options tune the proxy. Zero values mean the documented defaults.
type Options struct {
	// JobLatency: each job is PENDING, then RUNNING, for this long in total
	// before it takes effect (0 = as fast as the emulator).
	JobLatency time.Duration

	// Quota sizes; 0 means the documented value (see limits.go).
	TableMetadataUpdatesPer10s int // 5
	DMLPer10s                  int // 25
	MutatingDMLRunning         int // 2
	MutatingDMLQueued          int // 20
	InsertDMLFreePerDay        int // 1,500
	InsertDMLRunning           int // 10
	InsertDMLQueued            int // 100
	PartitionModsPer10s        int // 50
	PartitionModsPerDay        int // 30,000
	LoadJobsPerTablePerDay     int // 1,500
	LoadJobsPerProjectPerDay   int // 100,000 (quotas.go)
	CopyJobsPerTablePerDay     int // 1,000
	TablesInsertPerSecond      int // 10
	PartitionsPerTable         int // 10,000 (partitions.go)
	PartitionsPerJob           int // 4,000

	// DMLConflictRetries is how often a mutating DML statement that
	// conflicts on a partition is run again before it fails (conflicts.go);
	// 0 means BigQuery's three.
	DMLConflictRetries int

	// CancelLoses is the share of jobs.cancel requests (0..1) that are
	// answered while the job goes on to complete (cancel.go); 0: none.
	CancelLoses float64

	// InsertIDWindow is how long insertAll remembers an insertId (about a
	// minute, per the streaming documentation). 0 = 1 minute.
	InsertIDWindow time.Duration

	// StreamingBufferWindow: rows streamed with insertAll stay this long in
	// the streaming buffer, where UPDATE, DELETE, MERGE and TRUNCATE cannot
	// touch them (30 minutes per the DML page). 0 = 30 minutes.
	StreamingBufferWindow time.Duration

	// StreamingVisibilityDelay: rows streamed with insertAll reach queries
	// this long after they were accepted (streamdelay.go); 0: at once.
	StreamingVisibilityDelay time.Duration
	// StreamingVisibilityJitter adds a random part, uniform in [0, jitter),
	// to each insertAll's delay (streamdelay.go); 0: none.
	StreamingVisibilityJitter time.Duration

	// Logf, if set, is told why a limit refused something.
	Logf func(format string, args ...any)
}

// Proxy is a running fidelity layer.
type Proxy struct {
	opt       Options
	emu       *url.URL // emulator base: scheme://host
	emuBase   string   // emulator REST base ending in /bigquery/v2/
	ln        net.Listener
	srv       *http.Server
	rp        *httputil.ReverseProxy
	http      *http.Client
	jobs      *jobTable
	lim       *limits
	stream    *streaming
	conflicts *conflicts
	faults    *faults
	uploads   *uploads
	stats     *counters
	holds     holds // hold.go: a test's hook
	closeCtx  context.Context
	stop      context.CancelFunc
	wg        sync.WaitGroup
}

// Start listens on a held 127.0.0.1 port and proxies to emulatorEndpoint
// (like "http://127.0.0.1:9050/bigquery/v2/").
func Start(emulatorEndpoint string, opt Options) (*Proxy, error) {
	u, err := url.Parse(emulatorEndpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bqfidelity: bad emulator endpoint %q", emulatorEndpoint)
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bqfidelity: listen: %w", err)
	}
	opt = opt.withDefaults()
	ctx, stop := context.WithCancel(context.Background())
	p := &Proxy{
		opt:       opt,
		emu:       base,
		emuBase:   base.String() + "/bigquery/v2/",
		ln:        ln,
		stats:     newCounters(),
		faults:    &faults{},
		uploads:   newUploads(),
		conflicts: newConflicts(),
		closeCtx:  ctx,
		stop:      stop,
	}
	count := countingTransport{next: http.DefaultTransport, stats: p.stats}
	p.rp = httputil.NewSingleHostReverseProxy(base)
	p.rp.Transport = count
	p.http = &http.Client{Timeout: 5 * time.Minute, Transport: count}
	p.jobs = newJobTable()
	p.lim = newLimits(opt, p.stats)
	p.stream = newStreaming(opt.InsertIDWindow, opt.StreamingBufferWindow)
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Endpoint is the proxy's REST base for option.WithEndpoint.
func (p *Proxy) Endpoint() string {
	return "http://" + p.ln.Addr().String() + "/bigquery/v2/"
}

// Close stops accepting requests and abandons jobs still waiting.
func (p *Proxy) Close() {
	p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.lim.close()
	_ = p.srv.Shutdown(ctx)
	p.wg.Wait()
}

// Inject makes the next f.Count requests or jobs matching f fail as f says.
func (p *Proxy) Inject(f Fault) { p.faults.add(f) }

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.TableMetadataUpdatesPer10s, 5)
	def(&o.DMLPer10s, 25)
	def(&o.MutatingDMLRunning, 2)
	def(&o.MutatingDMLQueued, 20)
	def(&o.InsertDMLFreePerDay, 1500)
	def(&o.InsertDMLRunning, 10)
	def(&o.InsertDMLQueued, 100)
	def(&o.PartitionModsPer10s, 50)
	def(&o.PartitionModsPerDay, 30000)
	def(&o.LoadJobsPerTablePerDay, 1500)
	def(&o.LoadJobsPerProjectPerDay, 100000)
	def(&o.CopyJobsPerTablePerDay, 1000)
	def(&o.TablesInsertPerSecond, 10)
	def(&o.PartitionsPerTable, 10000)
	def(&o.PartitionsPerJob, 4000)
	if o.InsertIDWindow <= 0 {
		o.InsertIDWindow = time.Minute
	}
	if o.StreamingBufferWindow <= 0 {
		o.StreamingBufferWindow = 30 * time.Minute
	}
	return o
}

// serve routes a request: the methods the proxy models, else pass-through.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/fidelity/stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, p.Stats())
		return
	case path == "/fidelity/inject" && r.Method == http.MethodPost:
		var f Fault
		if err := readJSON(r, &f); err != nil {
			writeError(w, &apiError{Code: 400, Reason: "invalid", Message: err.Error()})
			return
		}
		p.Inject(f)
		writeJSON(w, http.StatusOK, f)
		return
	}
	if rest, ok := strings.CutPrefix(path, "/upload/bigquery/v2/projects/"); ok {
		project, tail, _ := strings.Cut(rest, "/")
		if tail == "jobs" {
			p.handleUpload(w, r, project)
			return
		}
	}
	rest, ok := strings.CutPrefix(path, "/bigquery/v2/projects/")
	if !ok {
		p.rp.ServeHTTP(w, r)
		return
	}
	seg := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	project := seg[0]
	switch {
	case len(seg) == 2 && seg[1] == "jobs" && r.Method == http.MethodPost:
		p.handleJobsInsert(w, r, project)
	case len(seg) == 2 && seg[1] == "jobs" && r.Method == http.MethodGet:
		p.handleJobsList(w, r, project) // joblist.go
	case len(seg) == 3 && seg[1] == "jobs" && r.Method == http.MethodGet:
		p.handleJobsGet(w, r, project, seg[2])
	case len(seg) == 4 && seg[1] == "jobs" && seg[3] == "cancel" && r.Method == http.MethodPost:
		p.handleJobsCancel(w, r, project, seg[2])
	case len(seg) == 2 && seg[1] == "queries" && r.Method == http.MethodPost:
		p.handleJobsQuery(w, r, project)
	case len(seg) == 3 && seg[1] == "queries" && r.Method == http.MethodGet:
		p.handleGetQueryResults(w, r, project, seg[2])
	case len(seg) == 4 && seg[1] == "datasets" && seg[3] == "tables" && r.Method == http.MethodPost:
		p.handleTablesInsert(w, r, project, seg[2])
	case len(seg) == 5 && seg[1] == "datasets" && seg[3] == "tables" && r.Method == http.MethodDelete:
		p.handleTablesDelete(w, r, project, seg[2], seg[4])
	case len(seg) == 5 && seg[1] == "datasets" && seg[3] == "tables" && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		p.handleTablesUpdate(w, r, project, seg[2], seg[4])
	case len(seg) == 6 && seg[1] == "datasets" && seg[3] == "tables" && seg[5] == "insertAll" && r.Method == http.MethodPost:
		p.handleInsertAll(w, r, project, seg[2], seg[4])
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// apiError is BigQuery's error envelope.
type apiError struct {
	Code    int
	Reason  string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Code, e.Reason, e.Message) }

// statusFor maps an error reason to the HTTP status BigQuery answers with
// (https://cloud.google.com/bigquery/docs/error-messages).
func statusFor(reason string) int {
	switch reason {
	case "notFound":
		return http.StatusNotFound
	case "duplicate":
		return http.StatusConflict
	case "rateLimitExceeded", "quotaExceeded", "accessDenied", "billingNotEnabled", "responseTooLarge":
		return http.StatusForbidden
	case "internalError":
		return http.StatusInternalServerError
	case "backendError":
		return http.StatusServiceUnavailable
	case "stopped":
		return http.StatusOK
	default:
		return http.StatusBadRequest
	}
}

func writeError(w http.ResponseWriter, e *apiError) {
	status := map[int]string{400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
		500: "INTERNAL", 503: "UNAVAILABLE"}[e.Code]
	writeJSON(w, e.Code, map[string]any{"error": map[string]any{
		"code": e.Code, "message": e.Message, "status": status,
		"errors": []any{map[string]any{"domain": "global", "reason": e.Reason, "message": e.Message}},
	}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// emuDo sends one request to the emulator and decodes its JSON answer. A
// non-2xx answer comes back as *apiError.
func (p *Proxy) emuDo(ctx context.Context, method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, p.emuBase+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return p.emuSend(req)
}

func (p *Proxy) emuSend(req *http.Request) (map[string]any, error) {
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, &apiError{Code: 503, Reason: "backendError", Message: "emulator unreachable: " + err.Error()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &apiError{Code: 503, Reason: "backendError", Message: "emulator answer cut: " + err.Error()}
	}
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, &apiError{Code: 500, Reason: "internalError", Message: "emulator answer: " + string(b)}
		}
	}
	if resp.StatusCode/100 != 2 {
		return nil, emulatorError(resp.StatusCode, out)
	}
	return out, nil
}

// emulatorError turns the emulator's error envelope into an apiError.
func emulatorError(code int, body map[string]any) *apiError {
	e := &apiError{Code: code, Reason: "invalid", Message: fmt.Sprintf("emulator answered %d", code)}
	if m, ok := body["error"].(map[string]any); ok {
		if s, ok := m["message"].(string); ok {
			e.Message = s
		}
		if errs, ok := m["errors"].([]any); ok && len(errs) > 0 {
			if first, ok := errs[0].(map[string]any); ok {
				if r, ok := first["reason"].(string); ok && r != "" {
					e.Reason = r
				}
			}
		}
	}
	return e
}

func asAPIError(err error) *apiError {
	var e *apiError
	if errors.As(err, &e) {
		return e
	}
	return &apiError{Code: 500, Reason: "internalError", Message: err.Error()}
}

func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

// countingTransport counts the requests that reach the emulator, by
// method and resource (EmulatorRequests): where a simulation's time on
// the emulator goes.
type countingTransport struct {
	next  http.RoundTripper
	stats *counters
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.stats.add(func(s *Stats) { s.EmulatorRequests[r.Method+" "+resource(r.URL.Path)]++ })
	return t.next.RoundTrip(r)
}

// resource names what a BigQuery REST path addresses without its ids:
// ".../datasets/d/tables/t/insertAll" is "tables/insertAll".
func resource(path string) string {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	var kinds []string
	for i, s := range seg {
		switch s {
		case "jobs", "queries", "datasets", "tables", "data", "insertAll", "cancel":
			kinds = append(kinds, s)
		case "upload":
			if i == 0 {
				kinds = append(kinds, s)
			}
		}
	}
	if len(kinds) > 2 {
		kinds = kinds[len(kinds)-2:]
	}
	return strings.Join(kinds, "/")
}
