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
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/pubsubx"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

func dateBody(table string, day time.Time) []byte {
	return envelope(fmt.Sprintf(`{"table":%q,"date":"%s"}`, table, day.Format(time.DateOnly)))
}

// A permanent error (a column changed type) is acked with 2xx so Pub/Sub
// does not retry it for ever, and recorded as a failed row in
// sync_control saying what went wrong.
func TestPushPermanentErrorIsAckedAndRecorded(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.exec(`CREATE TABLE rt (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, n integer);
INSERT INTO rt SELECT g, TIMESTAMPTZ '2024-04-03 01:00:00+00' + g * interval '1 minute', g FROM generate_series(1, 30) g`)
	s := r.openSpec(pgsource.TableSpec{Table: "rt", IDColumn: "id", TimestampColumn: "created_at"}, "rt", 10)
	r.exec(`ALTER TABLE rt ALTER COLUMN n TYPE text`)
	svc, ps, logs := newService(t, s)
	h := svc.PushHandler(t.Context(), slog.New(slog.NewJSONHandler(logs, nil)))
	day := time.Date(2024, 4, 3, 0, 0, 0, 0, time.UTC)
	if code := post(t, h, dateBody("rt", day)); code < 200 || code > 299 {
		t.Fatalf("status %d, want 2xx (ack: retrying cannot help)", code)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e, ok, err := r.state.Date(ctx, "rt", civil.DateOf(day))
	if err != nil || !ok {
		t.Fatalf("no sync_control row for the date: %v", err)
	}
	if e.State != syncstate.StateFailed || e.IsFinished || !strings.Contains(e.Detail, `column "n" changed type from integer to text`) {
		t.Fatalf("sync_control = %+v, want failed naming the column", e)
	}
	if !strings.Contains(logs.String(), `"msg":"date failed"`) {
		t.Fatalf("the failure is not logged:\n%s", logs.String())
	}
	if n := len(ps.Published()); n != 0 {
		t.Fatalf("a failed date published %d continuations", n)
	}
}

// The continuation cannot be published (the topic answers NotFound): the
// request answers 503, so Pub/Sub redelivers the message and the
// redelivery carries the date on from what is staged.
func TestPushContinuationPublishFails(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	day := time.Date(2024, 4, 4, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 120, false)
	s := r.open(50)
	svc, _, logs := newService(t, s)
	broken := testenv.NewPubSub(t, pstest.WithErrorInjection("Publish", codes.NotFound, "injected: topic not found"))
	pub := pubsubx.NewPublisher(broken.Client, broken.Topic)
	t.Cleanup(pub.Stop)
	healthy := svc.Pub
	svc.Pub = pub
	h := svc.PushHandler(t.Context(), slog.New(slog.NewJSONHandler(logs, nil)))

	svc.Budget = time.Nanosecond // the date cannot be done in one request
	if code := post(t, h, dateBody("activity_logs", day)); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 (redeliver: the continuation was not published)", code)
	}
	if e := r.entry(day); e.IsFinished {
		t.Fatalf("sync_control = %+v, want unfinished", e)
	}
	// The redelivery, with Pub/Sub healthy again and time to finish.
	svc.Pub, svc.Budget = healthy, time.Minute
	if code := post(t, h, dateBody("activity_logs", day)); code != http.StatusNoContent {
		t.Fatalf("redelivery: status %d, want 204", code)
	}
	if e := r.entry(day); !e.IsFinished {
		t.Fatalf("sync_control after the redelivery = %+v, want finished", e)
	}
	r.check(day)
}

// A message for a date that is already finished (Pub/Sub delivers at
// least once) is acked and changes nothing: no rows loaded, no new
// sync_control rows, no continuation.
func TestPushRedeliveryOfFinishedDate(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	day := time.Date(2024, 4, 5, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 120, false)
	s := r.open(50)
	svc, ps, logs := newService(t, s)
	h := svc.PushHandler(t.Context(), slog.New(slog.NewJSONHandler(logs, nil)))
	body := dateBody("activity_logs", day)
	if code := post(t, h, body); code != http.StatusNoContent {
		t.Fatalf("first delivery: status %d", code)
	}
	if e := r.entry(day); !e.IsFinished {
		t.Fatalf("sync_control = %+v, want finished", e)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	count := func() map[syncstate.State]int64 {
		t.Helper()
		out := map[syncstate.State]int64{}
		for _, st := range []syncstate.State{syncstate.StateInProgress, syncstate.StateFinished, syncstate.StateFailed} {
			n, err := r.state.CountState(ctx, "activity_logs", civil.DateOf(day), st)
			if err != nil {
				t.Fatal(err)
			}
			out[st] = n
		}
		return out
	}
	before := count()
	logs.Reset()
	if code := post(t, h, body); code != http.StatusNoContent {
		t.Fatalf("redelivery: status %d, want 204", code)
	}
	if after := count(); fmt.Sprint(after) != fmt.Sprint(before) || before[syncstate.StateFinished] != 1 {
		t.Fatalf("sync_control rows before %v, after the redelivery %v; want one finished row and no new rows", before, after)
	}
	if strings.Contains(logs.String(), "chunk staged") || !strings.Contains(logs.String(), `"outcome":"already_finished"`) {
		t.Fatalf("the redelivery did work or did not say the date was finished:\n%s", logs.String())
	}
	if n := len(ps.Published()); n != 0 {
		t.Fatalf("continuations published: %d", n)
	}
	r.check(day)
}
