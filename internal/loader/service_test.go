package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pubsubx"
	"github.com/pgbq/pgbq/internal/testenv"
)

func envelope(data string) []byte {
	b, _ := json.Marshal(map[string]any{
		"message":      map[string]any{"data": []byte(data), "messageId": "1"},
		"subscription": "projects/p/subscriptions/s",
	})
	return b
}

func newService(t *testing.T, s *Syncer) (*Service, *testenv.PubSub, *bytes.Buffer) {
	t.Helper()
	ps := testenv.NewPubSub(t)
	pub := pubsubx.NewPublisher(ps.Client, ps.Topic)
	t.Cleanup(pub.Stop)
	return &Service{Syncers: map[string]*Syncer{s.Table: s}, Pub: pub, Budget: time.Minute}, ps, &bytes.Buffer{}
}

func post(t *testing.T, h http.Handler, body []byte) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", bytes.NewReader(body)))
	return rec.Code
}

// Bad messages are logged with the reason and acked; nothing reaches SQL.
func TestPushRejectsBadMessages(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	seedDays(t, r.pool, time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC), 1, 20, false)
	svc, ps, logs := newService(t, r.open(50))
	h := svc.PushHandler(context.Background(), slog.New(slog.NewJSONHandler(logs, nil)))
	cases := []struct{ name, body, reason string }{
		{"not json", string(envelope(`not json`)), "not a JSON object"},
		{"unknown table", string(envelope(`{"table":"users","date":"2024-04-01"}`)), "is not configured"},
		{"bad date", string(envelope(`{"table":"activity_logs","date":"2024-13-01"}`)), "is not a date"},
		{"sql in table", string(envelope(`{"table":"activity_logs; DROP TABLE x","date":"2024-04-01"}`)), "is not a table name"},
		{"not an envelope", `[1,2,3]`, "not a Pub/Sub push envelope"},
	}
	for _, tc := range cases {
		logs.Reset()
		if code := post(t, h, []byte(tc.body)); code != http.StatusNoContent {
			t.Fatalf("%s: status %d, want 204 (ack)", tc.name, code)
		}
		if !strings.Contains(logs.String(), tc.reason) || !strings.Contains(logs.String(), "message rejected") {
			t.Fatalf("%s: log %q does not give the reason %q", tc.name, logs.String(), tc.reason)
		}
	}
	if e := r.entry(time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)); e.State != "" {
		t.Fatalf("a rejected message left sync_control state %+v", e)
	}
	if n := len(ps.Published()); n != 0 {
		t.Fatalf("rejected messages published %d continuations", n)
	}
}

// A valid message syncs its date and acks; a date that runs out of budget
// acks and publishes a continuation for itself.
func TestPushSyncsAndContinues(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	day := time.Date(2024, 4, 2, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 120, false)
	svc, ps, logs := newService(t, r.open(50))
	h := svc.PushHandler(context.Background(), slog.New(slog.NewJSONHandler(logs, nil)))
	body := envelope(fmt.Sprintf(`{"table":"activity_logs","date":"%s"}`, day.Format(time.DateOnly)))

	svc.Budget = time.Nanosecond // no time for a single chunk
	if code := post(t, h, body); code != http.StatusNoContent {
		t.Fatalf("status %d, want 204", code)
	}
	want := `{"table":"activity_logs","date":"2024-04-02"}`
	if got := ps.Published(); len(got) != 1 || got[0] != want {
		t.Fatalf("continuations = %v, want [%s]", got, want)
	}

	svc.Budget = time.Minute
	if code := post(t, h, body); code != http.StatusNoContent {
		t.Fatalf("status %d, want 204", code)
	}
	r.check(day)
	if e := r.entry(day); !e.IsFinished {
		t.Fatalf("sync_control = %+v, want finished", e)
	}
	if !strings.Contains(logs.String(), `"msg":"chunk staged"`) || !strings.Contains(logs.String(), `"read_ms"`) {
		t.Fatalf("no chunk log line in %s", logs.String())
	}
}
