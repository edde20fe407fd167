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

type session struct {
	project   string
	meta      map[string]any
	mediaType string
	buf       []byte
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
	cr := strings.TrimPrefix(r.Header.Get("Content-Range"), "bytes ")
	rng, total, _ := strings.Cut(cr, "/")
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
		p.uploads.mu.Lock()
		delete(p.uploads.sessions, id)
		p.uploads.mu.Unlock()
		p.insertJob(w, r, s.project, s.meta, s.buf, s.mediaType)
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
