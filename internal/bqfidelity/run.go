package bqfidelity

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/textproto"
	"regexp"
	"strings"
	"time"

	"mime/multipart"
)

// plan is what a job changes, as the limits and the executor need it.
type plan struct {
	kind        string
	writes      []tableUse // tables a load, copy or query job writes (not DML)
	stmts       []stmt     // DML and DDL statements of a query
	txn         bool
	partitioned map[string]bool // DML tables that are partitioned
	days        int             // partitions a DML statement modifies (see dmlDays)
	alter       []string        // a multi-action ALTER TABLE, split
	decor       *decorPlan      // partition decorators to translate
	sql         string          // a query's SQL as the emulator runs it, if translated (merge.go)
}

type tableUse struct {
	ref         tableRef
	partitioned bool
}

func uniq(refs []tableRef) []tableRef {
	seen := map[string]bool{}
	var out []tableRef
	for _, r := range refs {
		if !seen[r.key()] {
			seen[r.key()] = true
			out = append(out, r)
		}
	}
	return out
}

// dmlTables are the tables the job's DML statements change.
func (pl *plan) dmlTables() []tableRef {
	var out []tableRef
	for _, s := range pl.stmts {
		if s.dml() {
			out = append(out, s.table)
		}
	}
	return uniq(out)
}

// writeTables are all the tables the job changes.
func (pl *plan) writeTables() []tableRef {
	out := pl.dmlTables()
	for _, w := range pl.writes {
		out = append(out, w.ref)
	}
	return uniq(out)
}

// tableMeta reads a table's resource from the emulator (nil if missing).
func (p *Proxy) tableMeta(ctx context.Context, t tableRef) map[string]any {
	m, err := p.emuDo(ctx, http.MethodGet, "projects/"+t.Project+"/datasets/"+t.Dataset+"/tables/"+t.Table, nil)
	if err != nil {
		return nil
	}
	return m
}

func isPartitioned(meta map[string]any) bool {
	_, tp := meta["timePartitioning"].(map[string]any)
	_, rp := meta["rangePartitioning"].(map[string]any)
	return tp || rp
}

// dayLowerBound is a day the SQL names as the lower bound of a range:
// ">= TIMESTAMP|DATETIME|DATE 'YYYY-MM-DD…'".
var dayLowerBound = regexp.MustCompile(`(?i)>=\s*(?:TIMESTAMP|DATETIME|DATE)\s*'(\d{4}-\d{2}-\d{2})`)

// dmlDays is how many partitions a DML statement of sql modifies, by the
// days it names as lower bounds of ranges (pgbq's statements bound each
// day they touch so), at least one. A statement that touches many days
// without naming them is counted as one: kinder than BigQuery, which
// counts every partition (https://cloud.google.com/bigquery/quotas#partitioned_tables).
func dmlDays(sql string) int {
	days := map[string]bool{}
	for _, m := range dayLowerBound.FindAllStringSubmatch(sql, -1) {
		days[m[1]] = true
	}
	return max(1, len(days))
}

// planJob reads what the job changes.
func (p *Proxy) planJob(ctx context.Context, j *job) (*plan, *apiError) {
	pl := &plan{kind: j.kind, partitioned: map[string]bool{}}
	c, _ := j.config[j.kind].(map[string]any)
	if dest, ok := refFromJSON(c["destinationTable"], j.project); ok && j.kind != "extract" {
		meta := p.tableMeta(ctx, dest)
		pl.writes = append(pl.writes, tableUse{ref: dest, partitioned: isPartitioned(meta)})
	}
	if j.kind == "query" {
		sql, _ := c["query"].(string)
		defDataset := ""
		if dd, ok := c["defaultDataset"].(map[string]any); ok {
			defDataset, _ = dd["datasetId"].(string)
		}
		pl.stmts, pl.txn = scanSQL(sql, j.project, defDataset)
		pl.days = dmlDays(sql)
		for _, t := range pl.dmlTables() {
			pl.partitioned[t.key()] = isPartitioned(p.tableMeta(ctx, t))
		}
		pl.alter = splitAlter(sql)
		pl.sql = p.planMerge(ctx, j.project, defDataset, sql)
		if pl.alter != nil && len(pl.stmts) > 0 {
			pl.stmts = pl.stmts[:1] // one metadata update for the whole ALTER
		}
	}
	d, err := p.planDecorators(ctx, j)
	if err != nil {
		return nil, err
	}
	pl.decor = d
	if err := p.checkLoadTyping(ctx, j); err != nil {
		return nil, err
	}
	return pl, nil
}

func (j *job) isCancelled() bool {
	select {
	case <-j.cancelCh:
		return true
	default:
		return false
	}
}

// sleep waits d unless the job is cancelled or the proxy closes.
func (p *Proxy) sleep(j *job, d time.Duration) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-j.cancelCh:
		case <-p.closeCtx.Done():
		}
	}
	return !j.isCancelled() && p.closeCtx.Err() == nil
}

// run is a job's life: PENDING for half the latency, admitted by the limits,
// (perhaps after waiting in a DML queue),
// RUNNING for the other half, then the work on the emulator, then DONE. It
// does not depend on the request that created the job.
func (p *Proxy) run(j *job) {
	defer p.wg.Done()
	defer close(j.done)
	defer func() { j.media = nil }() // a finished job keeps no upload in memory
	ctx := p.closeCtx
	half := p.opt.JobLatency / 2
	sent := clientSQL(j) // billed as sent, whatever the emulator is given (billing.go)
	// Reading what the job changes takes emulator calls; it happens while
	// the job is PENDING, which ends half the latency after its creation
	// however long the reading took, so that jobs created together reach
	// the limits together.
	pl, aerr := p.planJob(ctx, j)
	if !p.sleep(j, time.Until(j.created.Add(half))) || !p.waitHold(j) { // hold.go
		p.finish(j, errStopped)
		return
	}
	if aerr == nil {
		aerr = p.checkPartitions(ctx, j, pl) // partitions.go
	}
	if aerr != nil {
		p.finish(j, aerr)
		return
	}
	for _, st := range pl.stmts {
		if st.mutating() && p.stream.inBuffer(st.table) {
			p.finish(j, &apiError{Code: 400, Reason: "invalidQuery", Message: st.verb + " statement over table " + st.table.key() +
				" would affect rows in the streaming buffer, which is not supported"})
			return
		}
	}
	if j.forcedErr != "" {
		p.lim.countJobQuota(j, pl)
		p.finish(j, injected(j, pl))
		return
	}
	if aerr := p.lim.admit(j, pl, j.isCancelled); aerr != nil {
		p.finish(j, aerr)
		return
	}
	p.jobs.mu.Lock()
	j.state, j.started = "RUNNING", time.Now()
	p.jobs.mu.Unlock()
	if !p.sleep(j, p.opt.JobLatency-half) {
		p.lim.release(j, pl, false)
		p.finish(j, errStopped)
		return
	}
	if aerr := p.lim.commitCheck(j, pl); aerr != nil {
		p.lim.release(j, pl, false)
		p.finish(j, aerr)
		return
	}
	if aerr := p.commitDML(j, pl); aerr != nil { // conflicts.go
		p.lim.release(j, pl, false)
		p.finish(j, aerr)
		return
	}
	p.jobs.mu.Lock()
	if j.cancelled {
		p.jobs.mu.Unlock()
		p.conflicts.unclaim(j)
		p.lim.release(j, pl, false)
		p.finish(j, errStopped)
		return
	}
	j.effect = true
	p.jobs.mu.Unlock()
	m, merr := p.meter(ctx, j, pl, sent)
	if merr != nil && p.opt.Logf != nil {
		p.opt.Logf("bqfidelity: bytes processed by job %s not known: %v", j.id, merr)
	}
	aerr = p.execute(ctx, j, pl)
	if aerr != nil {
		p.conflicts.unclaim(j)
	}
	p.lim.release(j, pl, aerr == nil)
	if aerr == nil {
		p.charge(j, m)
		p.stats.add(func(s *Stats) {
			for _, st := range pl.stmts {
				if st.dml() {
					s.DMLRun[st.verb]++
				}
			}
		})
	}
	p.finish(j, aerr)
}

func (p *Proxy) finish(j *job, e *apiError) {
	now := time.Now()
	p.jobs.mu.Lock()
	j.state, j.ended = "DONE", now
	if j.started.IsZero() {
		j.started = now
	}
	if e != nil {
		j.errResult = map[string]any{"reason": e.Reason, "message": e.Message}
	}
	p.jobs.mu.Unlock()
	p.stats.add(func(s *Stats) {
		switch e {
		case nil:
			s.JobsRun[j.kind]++
		case errStopped:
			s.JobsCancelled++
			s.JobsFailed[e.Reason]++
		default:
			s.JobsFailed[e.Reason]++
		}
	})
}

// execute does the job's work on the emulator.
func (p *Proxy) execute(ctx context.Context, j *job, pl *plan) *apiError {
	if pl.decor != nil {
		p.stats.add(func(s *Stats) { s.DecoratorJobs++ })
		return p.runDecorated(ctx, j, pl.decor)
	}
	if pl.alter != nil {
		for _, q := range pl.alter {
			if _, err := p.emuQuery(ctx, j.project, q); err != nil {
				return err
			}
		}
		return nil
	}
	config := j.config
	if pl.sql != "" {
		config = withQuery(j.config, pl.sql)
	}
	res, err := p.emuJob(ctx, j.project, j.kind, config, j.media, j.mediaType)
	if err != nil {
		return err
	}
	ref, _ := res["jobReference"].(map[string]any)
	p.jobs.mu.Lock()
	j.emuID, _ = ref["jobId"].(string)
	j.emuJob = res
	p.jobs.mu.Unlock()
	return nil
}

// withQuery is a query job's configuration with its SQL replaced.
func withQuery(config map[string]any, sql string) map[string]any {
	q := map[string]any{}
	if c, ok := config["query"].(map[string]any); ok {
		for k, v := range c {
			q[k] = v
		}
	}
	q["query"] = sql
	out := map[string]any{}
	for k, v := range config {
		out[k] = v
	}
	out["query"] = q
	return out
}

// emuJob runs one job on the emulator (which runs it before answering) and
// returns its resource, or its failure in BigQuery's job-level form.
func (p *Proxy) emuJob(ctx context.Context, project, kind string, config map[string]any, media []byte, mediaType string) (map[string]any, *apiError) {
	body := map[string]any{"jobReference": map[string]any{"projectId": project, "jobId": randomID("fid_")}, "configuration": config}
	var res map[string]any
	var err error
	if media != nil {
		res, err = p.emuUpload(ctx, project, body, media, mediaType)
	} else {
		res, err = p.emuDo(ctx, http.MethodPost, "projects/"+project+"/jobs", body)
	}
	if err != nil {
		return nil, withTable(translate(kind, asAPIError(err)), config[kind], project)
	}
	if st, ok := res["status"].(map[string]any); ok {
		if er, ok := st["errorResult"].(map[string]any); ok {
			e := &apiError{Code: 400}
			e.Reason, _ = er["reason"].(string)
			e.Message, _ = er["message"].(string)
			return nil, withTable(translate(kind, e), config[kind], project)
		}
	}
	return res, nil
}

// withTable names the job's destination in a notFound that names no project.
func withTable(e *apiError, c any, project string) *apiError {
	m, _ := c.(map[string]any)
	named, ok := strings.CutPrefix(e.Message, "Not found: Table ")
	if dest, isRef := refFromJSON(m["destinationTable"], project); isRef && ok && e.Reason == "notFound" && !strings.Contains(named, ":") {
		e.Message = "Not found: Table " + dest.String()
	}
	return e
}

// emuQuery runs one SQL statement as a query job on the emulator.
func (p *Proxy) emuQuery(ctx context.Context, project, sql string) (map[string]any, *apiError) {
	return p.emuJob(ctx, project, "query", map[string]any{"query": map[string]any{"query": sql, "useLegacySql": false}}, nil, "")
}

func (p *Proxy) emuUpload(ctx context.Context, project string, meta map[string]any, media []byte, mediaType string) (map[string]any, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json; charset=UTF-8"}})
	_ = json.NewEncoder(pw).Encode(meta)
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	pw, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {mediaType}})
	_, _ = pw.Write(media)
	_ = mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.emu.String()+"/upload/bigquery/v2/projects/"+project+"/jobs?uploadType=multipart", &buf)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "multipart/related; boundary="+mw.Boundary())
	return p.emuSend(req)
}

var duckMissing = regexp.MustCompile(`Catalog Error: Table with name (\S+) does not exist`)

var emuNotFound = regexp.MustCompile(`Not found: (?i:table):?\s*([^.\s:]+)[.:]([^.\s]+)\.([^\s.]+)`)

// translate gives an emulator failure the reason and message real BigQuery
// gives (https://cloud.google.com/bigquery/docs/error-messages): a missing
// table is notFound "Not found: Table p:d.t", bad SQL is invalidQuery, a bad
// load or copy is invalid. What the emulator cannot do is reported as
// invalid, a permanent error, never as a retryable one.
func translate(kind string, e *apiError) *apiError {
	out := &apiError{Code: e.Code, Reason: e.Reason, Message: e.Message}
	if m := duckMissing.FindStringSubmatch(e.Message); m != nil {
		// DuckDB's words for a table dropped under a running job.
		out.Reason, out.Message, out.Code = "notFound", "Not found: Table "+m[1], 404
		return out
	}
	if m := emuNotFound.FindStringSubmatch(e.Message); m != nil && (e.Code == 404 || e.Reason == "notFound") {
		out.Reason = "notFound"
		out.Message = "Not found: Table " + m[1] + ":" + m[2] + "." + strings.TrimSuffix(m[3], ",")
		if rest := e.Message[len(m[0]):]; strings.HasPrefix(rest, " was not found") {
			out.Message += rest
		}
	} else {
		switch {
		case e.Code == 404 || e.Reason == "notFound":
			out.Reason = "notFound"
		case e.Code == 409 || e.Reason == "duplicate":
			out.Reason = "duplicate"
		case e.Code >= 500 || e.Reason == "" || e.Reason == "internalError" || e.Reason == "backendError":
			out.Reason, out.Message = "invalid", "the emulator could not run this job: "+e.Message
		case kind == "query" && (e.Reason == "invalid" || e.Reason == "invalidQuery"):
			out.Reason = "invalidQuery"
		case e.Reason == "invalidQuery":
			out.Reason = "invalid"
		}
	}
	out.Code = statusFor(out.Reason)
	return out
}

// injected is the failure an injected JobErrorReason gives, worded as
// BigQuery words it (https://cloud.google.com/bigquery/docs/error-messages).
func injected(j *job, pl *plan) *apiError {
	e := &apiError{Code: statusFor(j.forcedErr), Reason: j.forcedErr, Message: "fidelity fault: injected " + j.forcedErr}
	switch j.forcedErr {
	case "notFound":
		if w := pl.writeTables(); len(w) > 0 {
			e.Message = "Not found: Table " + w[0].String()
		}
	case "internalError":
		e.Message = "An internal error occurred and the request could not be completed. This is usually caused by a transient issue. Retrying the job with back-off as described in the BigQuery SLA should solve the problem: https://cloud.google.com/bigquery/sla."
	case "backendError":
		e.Message = "Backend error. Job aborted."
	case "rateLimitExceeded":
		e.Message = "Exceeded rate limits: too many table update operations for this table." + quotaHelp
	}
	return e
}
