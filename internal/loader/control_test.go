package loader

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/syncstate"
)

// A paused table's message is acked without work, the log says why; once
// resumed, the same message syncs the date.
func TestPausedTableMessageIsAckedWithoutWork(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	day := time.Date(2024, 4, 3, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 40, false)
	svc, ps, logs := newService(t, r.open(50))
	svc.Control = r.state
	h := svc.PushHandler(context.Background(), slog.New(slog.NewJSONHandler(logs, nil)))
	body := envelope(fmt.Sprintf(`{"table":"activity_logs","date":"%s"}`, day.Format(time.DateOnly)))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pause := func(st syncstate.State) {
		t.Helper()
		if err := r.state.Append(ctx, syncstate.Entry{Table: "activity_logs", Date: syncstate.ControlDate, State: st,
			Detail: "maintenance", Writer: "operator"}); err != nil {
			t.Fatal(err)
		}
	}

	pause(syncstate.StatePaused)
	if code := post(t, h, body); code != http.StatusNoContent {
		t.Fatalf("status %d, want 204 (ack)", code)
	}
	for _, want := range []string{`"msg":"message acked without work"`, `"reason":"table paused"`, `"pause_reason":"maintenance"`, `"paused_by":"operator"`} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if e := r.entry(day); e.State != "" {
		t.Fatalf("a paused table's message did work: sync_control %+v", e)
	}
	if n := len(ps.Published()); n != 0 {
		t.Fatalf("a paused table's message published %d continuations", n)
	}

	pause(syncstate.StateResumed)
	if code := post(t, h, body); code != http.StatusNoContent {
		t.Fatalf("status %d after resume, want 204", code)
	}
	r.check(day)
	if e := r.entry(day); !e.IsFinished {
		t.Fatalf("after resume sync_control = %+v, want finished", e)
	}
}

// Log lines of a push request carry its trace.
func TestPushLogsCarryTheTrace(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	svc, _, _ := newService(t, r.open(50))
	svc.TraceProject = "proj"
	var logs bytes.Buffer
	h := svc.PushHandler(context.Background(), slog.New(slog.NewJSONHandler(&logs, nil)))
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/",
		bytes.NewReader(envelope(`{"table":"users","date":"2024-04-01"}`)))
	req.Header.Set("X-Cloud-Trace-Context", "4bf92f3577b34da6a3ce929d0e0e4736/1;o=1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status %d", rec.Code)
	}
	want := `"logging.googleapis.com/trace":"projects/proj/traces/4bf92f3577b34da6a3ce929d0e0e4736"`
	if !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "message rejected") {
		t.Fatalf("log lines lack %s:\n%s", want, logs.String())
	}
}
