package bqfidelity

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Jobs are asynchronous: jobs.insert answers at once with the job PENDING;
// jobs.get shows PENDING, then RUNNING, then DONE; a job keeps running when
// its client goes away; jobs.cancel stops it if it has not taken effect.
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/insert
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/cancel
// https://cloud.google.com/bigquery/docs/managing-jobs (job states)
//
// The proxy keeps its own job table keyed by the client's project, location
// and job id, and maps each job to the emulator's job that did the work (the
// emulator replaces the caller's id on uploads with its own bqemu_… id).

type job struct {
	project, location, id string
	kind                  string         // load, copy, query, extract
	config                map[string]any // configuration as the client sent it
	media                 []byte
	mediaType             string
	forcedErr             string // injected JobErrorReason

	// guarded by jobTable.mu
	state          string
	created        time.Time
	started, ended time.Time
	errResult      map[string]any
	emuID          string         // emulator job holding the results, if any
	emuJob         map[string]any // emulator's job resource
	schema         any            // result schema when no emulator job holds it
	effect         bool           // the work has begun on the emulator
	cancelled      bool
	meter          *meterResult // bytes processed, once the query job succeeded
	cancelCh       chan struct{}
	done           chan struct{}
}

type jobTable struct {
	mu       sync.Mutex
	jobs     map[string]*job
	requests map[string]*job // jobs.query requestId -> job
}

func newJobTable() *jobTable {
	return &jobTable{jobs: map[string]*job{}, requests: map[string]*job{}}
}

func normLocation(l string) string {
	if l == "" {
		return "US"
	}
	return strings.ToUpper(l)
}

func jobKey(project, location, id string) string {
	return project + "/" + normLocation(location) + "/" + id
}

// create adds j unless its id is taken (false: the caller answers 409).
func (t *jobTable) create(j *job) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := jobKey(j.project, j.location, j.id)
	if _, ok := t.jobs[k]; ok {
		return false
	}
	j.state = "PENDING"
	j.created = time.Now()
	j.cancelCh = make(chan struct{})
	j.done = make(chan struct{})
	t.jobs[k] = j
	return true
}

func (t *jobTable) get(project, location, id string) *job {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.jobs[jobKey(project, location, id)]
}

func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func jobKind(config map[string]any) string {
	for _, k := range []string{"query", "load", "copy", "extract"} {
		if _, ok := config[k]; ok {
			return k
		}
	}
	return ""
}

func msec(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// resource is the job as jobs.get shows it.
func (p *Proxy) resource(j *job) map[string]any {
	p.jobs.mu.Lock()
	defer p.jobs.mu.Unlock()
	stats := map[string]any{}
	if j.emuJob != nil {
		if s, ok := j.emuJob["statistics"].(map[string]any); ok {
			for k, v := range s {
				stats[k] = v
			}
		}
	}
	stats["creationTime"] = msec(j.created)
	delete(stats, "startTime")
	delete(stats, "endTime")
	if !j.started.IsZero() {
		stats["startTime"] = msec(j.started)
	}
	if !j.ended.IsZero() {
		stats["endTime"] = msec(j.ended)
	}
	meterStats(j, stats)
	status := map[string]any{"state": j.state}
	if j.errResult != nil {
		status["errorResult"] = j.errResult
		status["errors"] = []any{j.errResult}
	}
	cfg := map[string]any{}
	for k, v := range j.config {
		cfg[k] = v
	}
	cfg["jobType"] = strings.ToUpper(j.kind)
	return map[string]any{
		"kind":          "bigquery#job",
		"id":            j.project + ":" + j.location + "." + j.id,
		"jobReference":  map[string]any{"projectId": j.project, "jobId": j.id, "location": j.location},
		"configuration": cfg,
		"status":        status,
		"statistics":    stats,
		"user_email":    "fidelity@localhost",
	}
}

func (p *Proxy) handleJobsInsert(w http.ResponseWriter, r *http.Request, project string) {
	var body map[string]any
	if err := readJSON(r, &body); err != nil {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "Invalid JSON payload: " + err.Error()})
		return
	}
	p.insertJob(w, r, project, body, nil, "")
}

// insertJob creates the job and starts it; the answer is the PENDING job.
func (p *Proxy) insertJob(w http.ResponseWriter, r *http.Request, project string, body map[string]any, media []byte, mediaType string) {
	config, _ := body["configuration"].(map[string]any)
	kind := jobKind(config)
	if kind == "" {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "Job configuration must contain one of: query, load, copy, extract"})
		return
	}
	if dry, _ := config["dryRun"].(bool); dry && media == nil {
		// A dry run runs nothing and counts toward no limit: the emulator answers it.
		res, err := p.emuDo(r.Context(), http.MethodPost, "projects/"+project+"/jobs", body)
		if err != nil {
			writeError(w, asAPIError(err))
			return
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	ref, _ := body["jobReference"].(map[string]any)
	id, _ := ref["jobId"].(string)
	loc, _ := ref["location"].(string)
	if id == "" {
		id = randomID("job_")
	}
	j := &job{project: project, location: normLocation(loc), id: id, kind: kind, config: config, media: media, mediaType: mediaType}
	f, faulted := p.faults.take(kind, targetTableID(kind, config))
	if faulted && !f.AfterWork && f.JobErrorReason == "" {
		p.stats.add(func(s *Stats) { s.FaultsFired++ })
		writeError(w, &apiError{Code: 500, Reason: "backendError", Message: "fidelity fault: the request failed before any work"})
		return
	}
	if !p.jobs.create(j) {
		// A reused job id: "Already Exists: Job project:location.id", reason
		// duplicate, HTTP 409 (https://cloud.google.com/bigquery/docs/error-messages).
		p.stats.add(func(s *Stats) { s.Duplicate409++ })
		writeError(w, &apiError{Code: 409, Reason: "duplicate", Message: "Already Exists: Job " + project + ":" + j.location + "." + id})
		return
	}
	if faulted {
		p.stats.add(func(s *Stats) { s.FaultsFired++ })
		j.forcedErr = f.JobErrorReason
	}
	p.wg.Add(1)
	go p.run(j)
	if faulted && f.AfterWork {
		select { // the work is done, then the answer is lost
		case <-j.done:
		case <-p.closeCtx.Done():
		}
		writeError(w, &apiError{Code: 500, Reason: "backendError", Message: "fidelity fault: the answer was lost after the work"})
		return
	}
	writeJSON(w, http.StatusOK, p.resource(j))
}

func (p *Proxy) lookup(w http.ResponseWriter, r *http.Request, project, id string) *job {
	loc := r.URL.Query().Get("location")
	j := p.jobs.get(project, loc, id)
	if j == nil {
		writeError(w, &apiError{Code: 404, Reason: "notFound", Message: "Not found: Job " + project + ":" + normLocation(loc) + "." + id})
	}
	return j
}

func (p *Proxy) handleJobsGet(w http.ResponseWriter, r *http.Request, project, id string) {
	if j := p.lookup(w, r, project, id); j != nil {
		writeJSON(w, http.StatusOK, p.resource(j))
	}
}

func (p *Proxy) handleJobsCancel(w http.ResponseWriter, r *http.Request, project, id string) {
	j := p.lookup(w, r, project, id)
	if j == nil {
		return
	}
	lost := p.cancelLoses() // cancel.go
	p.jobs.mu.Lock()
	if !lost && !j.cancelled && j.state != "DONE" {
		j.cancelled = true
		close(j.cancelCh)
	}
	p.jobs.mu.Unlock()
	p.lim.wakeAll()
	writeJSON(w, http.StatusOK, map[string]any{"kind": "bigquery#jobCancelResponse", "job": p.resource(j)})
}

// waitDone waits for j up to d (or the request's end); true if it is done.
func waitDone(r *http.Request, j *job, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-j.done:
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// timeoutParam is timeoutMs as sent, else BigQuery's default of 10 s.
func timeoutParam(v string) time.Duration {
	if ms, err := strconv.Atoi(v); err == nil && ms >= 0 && ms < 10000 {
		return time.Duration(ms) * time.Millisecond
	}
	return 10 * time.Second
}

// handleGetQueryResults: jobComplete=false until the job is done; a failed
// job answers with its error; a done job's rows come from the emulator.
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/getQueryResults
func (p *Proxy) handleGetQueryResults(w http.ResponseWriter, r *http.Request, project, id string) {
	j := p.lookup(w, r, project, id)
	if j == nil {
		return
	}
	ref := map[string]any{"projectId": j.project, "jobId": j.id, "location": j.location}
	if !waitDone(r, j, timeoutParam(r.URL.Query().Get("timeoutMs"))) {
		writeJSON(w, http.StatusOK, map[string]any{"kind": "bigquery#getQueryResultsResponse", "jobReference": ref, "jobComplete": false})
		return
	}
	out, aerr := p.doneResults(r, j, r.URL.RawQuery)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	out["kind"] = "bigquery#getQueryResultsResponse"
	out["jobReference"] = ref
	writeJSON(w, http.StatusOK, out)
}

// doneResults are the results of a done job: its error, the emulator's
// results page, or an empty result.
func (p *Proxy) doneResults(r *http.Request, j *job, rawQuery string) (map[string]any, *apiError) {
	p.jobs.mu.Lock()
	errRes, emuID, schema := j.errResult, j.emuID, j.schema
	p.jobs.mu.Unlock()
	if errRes != nil {
		reason, _ := errRes["reason"].(string)
		msg, _ := errRes["message"].(string)
		return nil, &apiError{Code: statusFor(reason), Reason: reason, Message: msg}
	}
	if emuID == "" {
		if schema == nil {
			schema = map[string]any{"fields": []any{}}
		}
		return map[string]any{"jobComplete": true, "totalRows": "0", "schema": schema}, nil
	}
	path := "projects/" + j.project + "/queries/" + emuID
	if rawQuery != "" {
		path += "?" + rawQuery
	}
	out, err := p.emuDo(r.Context(), http.MethodGet, path, nil)
	if err != nil {
		return nil, asAPIError(err)
	}
	out["jobComplete"] = true
	return out, nil
}

// handleJobsQuery runs jobs.query as a job of its own (so it obeys the same
// DML, transaction and quota rules), de-duplicated by requestId.
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query
func (p *Proxy) handleJobsQuery(w http.ResponseWriter, r *http.Request, project string) {
	var req map[string]any
	if err := readJSON(r, &req); err != nil {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "Invalid JSON payload: " + err.Error()})
		return
	}
	if dry, _ := req["dryRun"].(bool); dry {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "fidelity: dry runs are not modelled"})
		return
	}
	reqID, _ := req["requestId"].(string)
	loc, _ := req["location"].(string)
	lost := false // an AfterWork fault: answer 500 once the job is done
	p.jobs.mu.Lock()
	j := p.jobs.requests[reqID]
	if j != nil && j.errResult != nil && retryable(j.errResult["reason"]) {
		j = nil // refused, not run: the client's retry is a new attempt
	}
	p.jobs.mu.Unlock()
	if j == nil || reqID == "" {
		q := map[string]any{}
		for _, k := range []string{"query", "useLegacySql", "queryParameters", "defaultDataset", "parameterMode", "connectionProperties", "maximumBytesBilled", "useQueryCache"} {
			if v, ok := req[k]; ok {
				q[k] = v
			}
		}
		j = &job{project: project, location: normLocation(loc), id: randomID("fidq_"), kind: "query", config: map[string]any{"query": q}}
		if f, ok := p.faults.take("query", ""); ok {
			p.stats.add(func(s *Stats) { s.FaultsFired++ })
			if !f.AfterWork && f.JobErrorReason == "" {
				writeError(w, &apiError{Code: 500, Reason: "backendError", Message: "fidelity fault: the request failed before any work"})
				return
			}
			j.forcedErr = f.JobErrorReason
			lost = f.AfterWork
		}
		p.jobs.create(j)
		if reqID != "" {
			p.jobs.mu.Lock()
			p.jobs.requests[reqID] = j
			p.jobs.mu.Unlock()
		}
		p.wg.Add(1)
		go p.run(j)
	}
	if lost {
		select {
		case <-j.done:
		case <-p.closeCtx.Done():
		}
		writeError(w, &apiError{Code: 500, Reason: "backendError", Message: "fidelity fault: the answer was lost after the work"})
		return
	}
	ref := map[string]any{"projectId": j.project, "jobId": j.id, "location": j.location}
	timeout := 10 * time.Second
	if v, ok := req["timeoutMs"].(float64); ok && v >= 0 && v < 10000 {
		timeout = time.Duration(v) * time.Millisecond
	}
	if !waitDone(r, j, timeout) {
		writeJSON(w, http.StatusOK, map[string]any{"kind": "bigquery#queryResponse", "jobReference": ref, "jobComplete": false})
		return
	}
	raw := ""
	if v, ok := req["maxResults"].(float64); ok {
		raw = "maxResults=" + strconv.Itoa(int(v))
	}
	out, aerr := p.doneResults(r, j, raw)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	p.jobs.mu.Lock()
	if j.meter != nil {
		out["totalBytesProcessed"] = strconv.FormatInt(j.meter.processed, 10)
	}
	p.jobs.mu.Unlock()
	out["kind"] = "bigquery#queryResponse"
	out["jobReference"] = ref
	writeJSON(w, http.StatusOK, out)
}

// retryable reasons are the ones the Go client re-sends jobs.query for.
func retryable(reason any) bool {
	switch reason {
	case "rateLimitExceeded", "backendError", "internalError", "jobRateLimitExceeded":
		return true
	}
	return false
}
