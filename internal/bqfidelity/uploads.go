package bqfidelity

import (
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Media uploads of load jobs (jobs.insert at /upload/bigquery/v2/...).
// https://cloud.google.com/bigquery/docs/reference/api-uploads — multipart
// (metadata and media in one request) and resumable (a session, then the
// media in chunks). Both end in the same asynchronous job as a JSON
// jobs.insert; a resumable session is buffered here and sent to the emulator
// as one multipart request, since the emulator cannot take resumable uploads.
//
// A request to a session whose upload is complete — the final chunk sent
// again after its answer was lost, or a status query — is answered as
// https://cloud.google.com/storage/docs/performing-resumable-uploads#status-check
// says of a completed upload: 200 with the resource the upload made, here
// the same job; no second job is made. Fault kind "upload.final" fails the
// request carrying a session's final chunk: before any work (503, the
// chunk not kept), or with AfterWork once the job is made (the answer lost).

type session struct {
	project   string
	meta      map[string]any
	mediaType string
	buf       []byte
	mu        sync.Mutex // one request of the session at a time
	// set once the final chunk made the job
	done        bool
	jobLocation string
	jobID       string
}

type uploads struct {
	mu       sync.Mutex
	sessions map[string]*session
}

func newUploads() *uploads { return &uploads{sessions: map[string]*session{}} }

func (p *Proxy) handleUpload(w http.ResponseWriter, r *http.Request, project string) {
	q := r.URL.Query()
	switch {
	case q.Get("upload_id") != "":
		p.resumableChunk(w, r, q.Get("upload_id"))
	case q.Get("uploadType") == "resumable" && r.Method == http.MethodPost:
		var meta map[string]any
		if err := readJSON(r, &meta); err != nil {
			writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "Invalid JSON payload: " + err.Error()})
			return
		}
		id := randomID("up_")
		p.uploads.mu.Lock()
		p.uploads.sessions[id] = &session{project: project, meta: meta, mediaType: r.Header.Get("X-Upload-Content-Type")}
		p.uploads.mu.Unlock()
		w.Header().Set("Location", "http://"+r.Host+"/upload/bigquery/v2/projects/"+project+"/jobs?uploadType=resumable&upload_id="+id)
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost:
		p.multipartUpload(w, r, project)
	default:
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "fidelity: unsupported upload request"})
	}
}

func (p *Proxy) multipartUpload(w http.ResponseWriter, r *http.Request, project string) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "fidelity: expected a multipart upload"})
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var meta map[string]any
	var media []byte
	mediaType := ""
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "bad multipart body: " + err.Error()})
			return
		}
		b, err := io.ReadAll(part)
		if err != nil {
			writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "bad multipart body: " + err.Error()})
			return
		}
		if i == 0 {
			if err := json.Unmarshal(b, &meta); err != nil {
				writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "Invalid JSON payload: " + err.Error()})
				return
			}
		} else {
			media, mediaType = b, part.Header.Get("Content-Type")
		}
	}
	if media == nil {
		media = []byte{}
	}
	p.insertJob(w, r, project, meta, media, mediaType)
}

// resumableChunk takes one PUT of a resumable session: "Content-Range:
// bytes a-b/total" (total "*" while unknown); 308 until the last byte.
func (p *Proxy) resumableChunk(w http.ResponseWriter, r *http.Request, id string) {
	p.uploads.mu.Lock()
	s := p.uploads.sessions[id]
	p.uploads.mu.Unlock()
	if s == nil {
		writeError(w, &apiError{Code: 404, Reason: "notFound", Message: "upload session not found"})
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, &apiError{Code: 400, Reason: "invalid", Message: err.Error()})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		if j := p.jobs.get(s.project, s.jobLocation, s.jobID); j != nil {
			p.stats.add(func(st *Stats) { st.UploadsCompletedAgain++ })
			writeJSON(w, http.StatusOK, p.resource(j))
			return
		}
	}
	cr := strings.TrimPrefix(r.Header.Get("Content-Range"), "bytes ")
	rng, total, _ := strings.Cut(cr, "/")
	kept := len(s.buf)
	if rng != "*" && rng != "" {
		a, _, _ := strings.Cut(rng, "-")
		start, err := strconv.Atoi(a)
		if err != nil || start > len(s.buf) {
			writeError(w, &apiError{Code: 400, Reason: "invalid", Message: "bad Content-Range " + cr})
			return
		}
		s.buf = append(s.buf[:start], b...)
	}
	if n, err := strconv.Atoi(total); err == nil && n == len(s.buf) {
		p.finishUpload(w, r, s, kept)
		return
	}
	if len(s.buf) > 0 {
		w.Header().Set("Range", "bytes=0-"+strconv.Itoa(len(s.buf)-1))
	}
	if r.Header.Get("X-GUploader-No-308") == "yes" {
		// The Go client asks for "200 OK" with the 308 in a header instead.
		w.Header().Set("X-Http-Status-Code-Override", "308")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusPermanentRedirect)
}

// finishUpload makes the job of a session whose final chunk arrived (kept:
// the bytes held before this request), or fails the request as an
// "upload.final" fault says. Called with s.mu held.
func (p *Proxy) finishUpload(w http.ResponseWriter, r *http.Request, s *session, kept int) {
	ref, _ := s.meta["jobReference"].(map[string]any)
	if ref == nil {
		ref = map[string]any{}
		s.meta["jobReference"] = ref
	}
	if id, _ := ref["jobId"].(string); id == "" {
		ref["jobId"] = randomID("job_")
	}
	s.jobID, _ = ref["jobId"].(string)
	loc, _ := ref["location"].(string)
	s.jobLocation = normLocation(loc)
	cfg, _ := s.meta["configuration"].(map[string]any)
	f, faulted := p.faults.take("upload.final", targetTableID("load", cfg))
	if faulted {
		p.stats.add(func(st *Stats) { st.FaultsFired++ })
	}
	if faulted && !f.AfterWork {
		s.buf = s.buf[:kept]
		writeError(w, &apiError{Code: 503, Reason: "backendError", Message: "fidelity fault: the final chunk was not received"})
		return
	}
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK, discard: faulted}
	p.insertJob(rec, r, s.project, s.meta, s.buf, s.mediaType)
	if rec.code/100 == 2 {
		s.done, s.buf = true, nil
	}
	if faulted {
		writeError(w, &apiError{Code: 503, Reason: "backendError", Message: "fidelity fault: the answer to the final chunk was lost after the job was made"})
	}
}
