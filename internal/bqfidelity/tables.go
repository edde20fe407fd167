package bqfidelity

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// tables.insert, tables.patch and tables.update pass through after the
// metadata limits (limits.go): tables.insert 10 per second per user, and 5
// table metadata updates per 10 s per table, refused with HTTP 403
// rateLimitExceeded (https://cloud.google.com/bigquery/quotas#api_request_quotas,
// https://cloud.google.com/bigquery/docs/troubleshoot-quotas).

func (p *Proxy) handleTablesInsert(w http.ResponseWriter, r *http.Request, project, dataset string) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: err.Error()})
		return
	}
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	ref, _ := refFromJSON(body["tableReference"], project)
	if ref.Dataset == "" {
		ref.Dataset = dataset
	}
	p.passWithLimits(w, r, raw, "tables.insert", ref, func() *apiError { return p.lim.tablesInsert(ref) })
}

func (p *Proxy) handleTablesUpdate(w http.ResponseWriter, r *http.Request, project, dataset, table string) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: err.Error()})
		return
	}
	ref := tableRef{Project: project, Dataset: dataset, Table: table}
	p.passWithLimits(w, r, raw, "tables.patch", ref, func() *apiError { return p.lim.metadataUpdate(ref) })
}

// passWithLimits applies limit, then any armed fault, then forwards.
func (p *Proxy) passWithLimits(w http.ResponseWriter, r *http.Request, raw []byte, kind string, ref tableRef, limit func() *apiError) {
	f, faulted := p.faults.take(kind, ref.Table)
	if faulted {
		p.stats.add(func(s *Stats) { s.FaultsFired++ })
		if !f.AfterWork {
			writeError(w, &apiError{Code: 500, Reason: "backendError", Message: "fidelity fault: the request failed before any work"})
			return
		}
	}
	if e := limit(); e != nil {
		writeError(w, e)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	r.ContentLength = int64(len(raw))
	if faulted && f.AfterWork {
		rec := &discard{header: http.Header{}}
		p.rp.ServeHTTP(rec, r)
		writeError(w, &apiError{Code: 500, Reason: "backendError", Message: "fidelity fault: the answer was lost after the work"})
		return
	}
	p.rp.ServeHTTP(w, r)
}

type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
