package loader

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/syncstate"
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

// Messages for dates before the table's range are refused with the
// reason and acked, nothing staged or recorded: before SYNC_START_DATE
// when it is set; when it is not, before both the table's first row and
// the first date sync_control records (a date recorded earlier, whose
// rows were since deleted, is still worked). Dates in the range are
// worked.
func TestMessagesBeforeTheTablesRange(t *testing.T) {
	t.Parallel()
	first := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	day := func(offset int) time.Time { return first.AddDate(0, 0, offset) }
	send := func(t *testing.T, r *rig, h http.Handler, logs *bytes.Buffer, d time.Time, refused string) {
		t.Helper()
		logs.Reset()
		if code := post(t, h, envelope(fmt.Sprintf(`{"table":"activity_logs","date":"%s"}`, d.Format(time.DateOnly)))); code != http.StatusNoContent {
			t.Fatalf("%s: status %d, want 204 (ack)", d.Format(time.DateOnly), code)
		}
		rejected := strings.Contains(logs.String(), "message rejected")
		switch {
		case refused == "" && rejected:
			t.Fatalf("%s was refused: %s", d.Format(time.DateOnly), logs.String())
		case refused == "":
			if e := r.entry(d); !e.IsFinished {
				t.Fatalf("%s: sync_control holds %+v, want it finished", d.Format(time.DateOnly), e)
			}
		case !rejected || !strings.Contains(logs.String(), refused):
			t.Fatalf("%s: log %q does not refuse it with %q", d.Format(time.DateOnly), logs.String(), refused)
		default:
			if e := r.entry(d); e.State != "" {
				t.Fatalf("%s: sync_control records %+v", d.Format(time.DateOnly), e)
			}
		}
	}

	t.Run("start date", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		seedDays(t, r.pool, first, 3, 10, false)
		s := r.open(50)
		s.Start = civil.DateOf(day(1))
		svc, _, logs := newService(t, s)
		h := svc.PushHandler(context.Background(), slog.New(slog.NewJSONHandler(logs, nil)))
		send(t, r, h, logs, day(0), "is before SYNC_START_DATE 2024-05-02")
		send(t, r, h, logs, day(-400), "is before SYNC_START_DATE 2024-05-02")
		send(t, r, h, logs, day(1), "")
		if n, err := r.wh.CountDay(t.Context(), day(0)); err != nil || n.Rows != 0 {
			t.Fatalf("the day before the start has %d rows in BigQuery (%v)", n.Rows, err)
		}
	})

	t.Run("first row", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		seedDays(t, r.pool, first, 2, 10, false)
		s := r.open(50)
		svc, _, logs := newService(t, s)
		h := svc.PushHandler(context.Background(), slog.New(slog.NewJSONHandler(logs, nil)))
		send(t, r, h, logs, day(-1), "is before the table's first row and its first synced date (2024-05-01)")
		send(t, r, h, logs, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "is before the table's first row")
		send(t, r, h, logs, day(0), "")
		// A date synced before its rows were deleted stays in the range.
		if err := r.state.Append(t.Context(), syncstate.Entry{Table: "activity_logs", Date: civil.DateOf(day(-10)),
			State: syncstate.StateFinished, IsFinished: true, Writer: "test"}); err != nil {
			t.Fatal(err)
		}
		send(t, r, h, logs, day(-10), "")
		send(t, r, h, logs, day(-11), "is before the table's first row and its first synced date (2024-04-21)")
	})
}
