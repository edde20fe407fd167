package bqfidelity

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// Streaming inserts (tabledata.insertAll).
// https://cloud.google.com/bigquery/docs/streaming-data-into-bigquery#dataconsistency
// — "BigQuery uses the insertId property for de-duplication" on a best-effort
// basis, remembering an insertId "for at least one minute"; rows sent
// without insertId are never de-duplicated, so a retry after a lost answer
// stores them twice. Modelled: insertIds are remembered for
// Options.InsertIDWindow (1 minute), never longer (stricter than "at least").
//
// https://cloud.google.com/bigquery/docs/data-manipulation-language#limitations
// — rows written by insertAll in the last 30 minutes cannot be modified by
// UPDATE, DELETE, MERGE or TRUNCATE. Modelled strictly: such a statement
// fails on any table that received streamed rows in the window, whichever
// rows it would touch.

type streaming struct {
	mu       sync.Mutex
	window   time.Duration
	buffer   time.Duration
	streamed map[string]time.Time // table key -> last rows streamed
	ids      map[string]time.Time // table + insertId -> first seen
	content  map[string]time.Time // table + row content (rows without insertId) -> last stored
	hidden   map[string]int       // table key -> rows accepted, not yet visible (streamdelay.go)
}

func newStreaming(window, buffer time.Duration) *streaming {
	return &streaming{window: window, buffer: buffer, streamed: map[string]time.Time{},
		ids: map[string]time.Time{}, content: map[string]time.Time{}, hidden: map[string]int{}}
}

// inBuffer reports whether t received streamed rows within the buffer window.
func (s *streaming) inBuffer(t tableRef) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.streamed[t.key()]
	return ok && time.Since(last) < s.buffer
}

func (s *streaming) prune(now time.Time) {
	for k, t := range s.ids {
		if now.Sub(t) >= s.window {
			delete(s.ids, k)
		}
	}
	for k, t := range s.content {
		if now.Sub(t) >= s.window {
			delete(s.content, k)
		}
	}
}

func (p *Proxy) handleInsertAll(w http.ResponseWriter, r *http.Request, project, dataset, table string) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: err.Error()})
		return
	}
	// Numbers stay as sent: an INT64 beyond 2^53 read as a float64 and
	// written on would reach the emulator rounded.
	var req map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "Invalid JSON payload: " + err.Error()})
		return
	}
	f, faulted := p.faults.take("insertAll", table)
	if faulted {
		p.stats.add(func(s *Stats) { s.FaultsFired++ })
		if !f.AfterWork {
			writeError(w, &apiError{Code: 500, Reason: "backendError", Message: "fidelity fault: the request failed before any work"})
			return
		}
	}
	rows, _ := req["rows"].([]any)
	tkey := project + "." + dataset + "." + table
	now := time.Now()
	var keep []any
	var index []int // position in the request of each kept row
	dups, deduped := 0, 0
	s := p.stream
	s.mu.Lock()
	s.prune(now)
	for i, row := range rows {
		m, _ := row.(map[string]any)
		if id, _ := m["insertId"].(string); id != "" {
			if _, seen := s.ids[tkey+"\x00"+id]; seen {
				deduped++
				continue
			}
			s.ids[tkey+"\x00"+id] = now
		} else {
			b, _ := json.Marshal(m["json"])
			h := sha256.Sum256(append([]byte(tkey+"\x00"), b...))
			if _, seen := s.content[string(h[:])]; seen {
				dups++
			}
			s.content[string(h[:])] = now
		}
		keep = append(keep, row)
		index = append(index, i)
	}
	s.mu.Unlock()
	p.stats.add(func(st *Stats) { st.InsertAllDeduped += deduped; st.InsertAllDuplicates += dups })

	out := map[string]any{"kind": "bigquery#tableDataInsertAllResponse"}
	if len(keep) > 0 && p.opt.StreamingVisibilityDelay > 0 {
		req["rows"] = keep
		p.streamLater(project, dataset, table, req) //nolint:contextcheck // the rows outlive the request (streamdelay.go)
		s.mu.Lock()
		s.streamed[tkey] = time.Now()
		s.mu.Unlock()
		keep = nil
	}
	if len(keep) > 0 {
		req["rows"] = keep
		res, err := p.emuDo(r.Context(), http.MethodPost, "projects/"+project+"/datasets/"+dataset+"/tables/"+table+"/insertAll", req)
		if err != nil {
			s.mu.Lock() // nothing was stored: forget the insertIds again
			for _, row := range keep {
				m, _ := row.(map[string]any)
				if id, _ := m["insertId"].(string); id != "" {
					delete(s.ids, tkey+"\x00"+id)
				}
			}
			s.mu.Unlock()
			writeError(w, asAPIError(err))
			return
		}
		s.mu.Lock()
		s.streamed[tkey] = time.Now()
		s.mu.Unlock()
		if ie, ok := res["insertErrors"].([]any); ok {
			for _, e := range ie { // indexes back to the caller's positions
				m, _ := e.(map[string]any)
				if k, ok := m["index"].(float64); ok && int(k) < len(index) {
					m["index"] = index[int(k)]
				}
			}
			out["insertErrors"] = ie
		}
	}
	if faulted && f.AfterWork {
		writeError(w, &apiError{Code: 500, Reason: "backendError", Message: "fidelity fault: the answer was lost after the work"})
		return
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(out)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(buf.Bytes())
}
