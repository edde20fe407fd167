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
	limit := func() *apiError {
		if e := p.lim.tablesInsert(); e != nil {
			return e
		}
		return p.lim.metadataRoom(ref, "tables.insert") // quotas.go
	}
	p.passWithLimits(w, r, raw, "tables.insert", ref, limit, func() { p.lim.created(ref) })
}

func (p *Proxy) handleTablesUpdate(w http.ResponseWriter, r *http.Request, project, dataset, table string) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: err.Error()})
		return
	}
	ref := tableRef{Project: project, Dataset: dataset, Table: table}
	ctx := r.Context()
	p.passWithLimits(w, r, raw, "tables.patch", ref, func() *apiError {
		if e := p.lim.metadataUpdate(ref); e != nil {
			return e
		}
		return p.addPatchedColumns(ctx, ref, raw) // schemapatch.go
	}, nil)
}

// passWithLimits applies limit, then any armed fault, then forwards;
// done runs when the emulator answered 2xx.
func (p *Proxy) passWithLimits(w http.ResponseWriter, r *http.Request, raw []byte, kind string, ref tableRef, limit func() *apiError, done func()) {
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
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK, discard: faulted && f.AfterWork}
	p.rp.ServeHTTP(rec, r)
	if done != nil && rec.code/100 == 2 {
		done()
	}
	if rec.discard {
		writeError(w, &apiError{Code: 500, Reason: "backendError", Message: "fidelity fault: the answer was lost after the work"})
	}
}

// statusRecorder notes the status; with discard it swallows the answer.
type statusRecorder struct {
	http.ResponseWriter
	code    int
	discard bool
	header  http.Header
}

func (s *statusRecorder) Header() http.Header {
	if s.discard {
		if s.header == nil {
			s.header = http.Header{}
		}
		return s.header
	}
	return s.ResponseWriter.Header()
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	if !s.discard {
		s.ResponseWriter.WriteHeader(code)
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.discard {
		return len(b), nil
	}
	return s.ResponseWriter.Write(b)
}
