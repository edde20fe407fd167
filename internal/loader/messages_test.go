package loader

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
)

// Messages for dates after tomorrow (by the loader's clock) are refused
// with the reason and acked: nothing is staged or recorded for them.
// Tomorrow is still accepted (clocks differ), and a message for a table
// the loader does not sync writes nothing under that name.
func TestMessagesForImpossibleDates(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	s := r.open(50)
	now := s.now().UTC()
	svc, ps, logs := newService(t, s)
	h := svc.PushHandler(context.Background(), slog.New(slog.NewJSONHandler(logs, nil)))
	today := now.Truncate(24 * time.Hour)
	for _, day := range []time.Time{today.AddDate(0, 0, 2), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)} {
		logs.Reset()
		body := envelope(fmt.Sprintf(`{"table":"activity_logs","date":"%s"}`, day.Format(time.DateOnly)))
		if code := post(t, h, body); code != http.StatusNoContent {
			t.Fatalf("%s: status %d, want 204 (ack)", day.Format(time.DateOnly), code)
		}
		if !strings.Contains(logs.String(), "message rejected") || !strings.Contains(logs.String(), "no row can have it yet") {
			t.Fatalf("%s: log %q does not give the reason", day.Format(time.DateOnly), logs.String())
		}
		if e := r.entry(day); e.State != "" {
			t.Fatalf("%s: sync_control records %+v", day.Format(time.DateOnly), e)
		}
	}
	logs.Reset()
	tomorrow := today.AddDate(0, 0, 1)
	if code := post(t, h, envelope(fmt.Sprintf(`{"table":"activity_logs","date":"%s"}`, tomorrow.Format(time.DateOnly)))); code != http.StatusNoContent {
		t.Fatalf("tomorrow: status %d", code)
	}
	if strings.Contains(logs.String(), "message rejected") {
		t.Fatalf("tomorrow was refused: %s", logs.String())
	}
	if code := post(t, h, envelope(`{"table":"users","date":"2024-04-01"}`)); code != http.StatusNoContent {
		t.Fatalf("unknown table: status %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e, _, err := r.state.Date(ctx, "users", civil.Date{Year: 2024, Month: 4, Day: 1}); err != nil || e.State != "" {
		t.Fatalf("unknown table recorded: %+v, %v", e, err)
	}
	if n := len(ps.Published()); n != 0 {
		t.Fatalf("refused messages published %d continuations", n)
	}
}
