package loader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/message"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Publisher sends a continuation message. Publishing the same message
// twice is harmless: loaders are idempotent per date.
type Publisher interface {
	Publish(ctx context.Context, data []byte) error
}

// Control says whether a table is paused (`planner pause`).
type Control interface {
	// Paused reports the pause and the entry that recorded it.
	Paused(ctx context.Context, table string) (bool, syncstate.Entry, error)
}

// Service turns messages into syncs. It decides what is acked: everything
// except transient failures, which are left to Pub/Sub's redelivery.
type Service struct {
	// Syncers holds one chunk loop per configured table, by the name
	// messages use (the destination table).
	Syncers map[string]*Syncer
	Pub     Publisher
	// Budget is how long one message may work before it checkpoints and
	// hands the rest of the date to a continuation message; well under
	// the 600 s push ack deadline.
	Budget time.Duration
	// Control, when set, is asked before each message whether its table
	// is paused; a paused table's messages are acked without work.
	Control Control
	// TraceProject is the project of the request traces that push
	// requests carry (their log lines then link to the trace).
	TraceProject string
}

// FinishTime is what a request may take beyond its budget to finish the
// load in flight and the publish. Budget + FinishTime must stay below the
// 600 s push ack deadline.
const FinishTime = 60 * time.Second

// Handle processes one message. A nil error means ack; an error means the
// failure is transient and the message should be redelivered.
func (s *Service) Handle(ctx context.Context, data []byte) error {
	log := logging.From(ctx)
	m, day, err := message.Decode(data)
	if err != nil {
		log.Warn("message rejected", "reason", err.Error())
		return nil
	}
	// A refused message is not recorded in sync_control: its table may
	// not be configured (the loader must not write under a name the
	// configuration does not know), and its date is outside the table's.
	reason, err := s.Refusal(ctx, m.Table, day)
	if err != nil {
		log.Warn("date interrupted, will be redelivered", "table", m.Table, "sync_date", m.Date, "error", err.Error())
		return err
	}
	if reason != "" {
		log.Warn("message rejected", "table", m.Table, "sync_date", m.Date, "reason", reason)
		return nil
	}
	syncer := s.Syncers[m.Table]
	log = log.With("table", m.Table, "sync_date", m.Date)
	ctx = logging.With(ctx, log)
	if paused, e, err := s.paused(ctx, m.Table); err != nil {
		// A pause is best effort: the planner plans no date of a paused
		// table, so few messages meet one; an unreadable state should not
		// stop the work (which reports its own failures).
		log.Warn("pause not read; working the message", "error", err.Error())
	} else if paused {
		// The planner publishes the date again after the resume.
		log.Info("message acked without work", "reason", "table paused", "paused_by", e.Writer,
			"pause_reason", e.Detail, "paused_at", e.SyncedAt.Format(time.RFC3339))
		return nil
	}
	start := time.Now()
	deadline := start.Add(s.Budget)
	// The budget bounds when new chunks start; the context gives the work
	// in flight (the last load, the publish) FinishTime more.
	workCtx, cancel := context.WithDeadline(ctx, deadline.Add(FinishTime))
	defer cancel()
	outcome, err := syncer.Sync(workCtx, day, deadline)
	if err != nil {
		if ctx.Err() == nil && retry.QuotaExceeded(err) {
			// A daily quota is spent (the project's 100,000 load jobs,
			// https://cloud.google.com/bigquery/quotas#load_jobs): nothing
			// is wrong with the date, and a redelivery within minutes
			// meets the same refusal. Acked without a failure; the planner
			// plans the date again once its checkpoint is no longer fresh.
			log.Warn("date deferred: a BigQuery quota is spent", "error", err.Error(), "duration_ms", time.Since(start).Milliseconds())
			return nil
		}
		if ctx.Err() == nil && !retry.Transient(err) {
			log.Error("date failed", "error", err.Error(), "duration_ms", time.Since(start).Milliseconds())
			s.recordFailure(ctx, syncer, day, err)
			return nil
		}
		log.Warn("date interrupted, will be redelivered", "error", err.Error(), "duration_ms", time.Since(start).Milliseconds())
		return err
	}
	log.Info("date processed", "outcome", outcome.String(), "duration_ms", time.Since(start).Milliseconds())
	if outcome == Continue {
		pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.Pub.Publish(pubCtx, message.New(m.Table, day).Encode()); err != nil {
			// Redelivery of this message continues the date instead.
			return fmt.Errorf("publish continuation: %w", err)
		}
	}
	return nil
}

// LastDate is the latest date a message may ask for at now: tomorrow (UTC),
// a margin for clocks that run ahead.
func LastDate(now time.Time) time.Time {
	return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
}

// paused asks Control, when set, whether table is paused.
func (s *Service) paused(ctx context.Context, table string) (bool, syncstate.Entry, error) {
	if s.Control == nil {
		return false, syncstate.Entry{}, nil
	}
	return s.Control.Paused(ctx, table)
}

func (s *Service) tableNames() string {
	names := make([]string, 0, len(s.Syncers))
	for n := range s.Syncers {
		names = append(names, strconv.Quote(n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (s *Service) recordFailure(ctx context.Context, syncer *Syncer, day time.Time, cause error) {
	if errors.Is(cause, ErrMismatch) {
		return // already recorded
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	detail := cause.Error()
	if len(detail) > 1000 {
		detail = detail[:1000]
	}
	// The failure belongs to the date's epoch as it is now (a read that
	// fails leaves it at 0: then the view may not show it, and the date
	// is planned again as it would be anyway).
	prev, _, _ := syncer.State.Date(ctx, syncer.Table, civil.DateOf(day))
	if err := syncer.State.Append(ctx, syncstate.Entry{Table: syncer.Table, Date: civil.DateOf(day),
		State: syncstate.StateFailed, Detail: detail, Writer: syncer.Writer, Epoch: prev.Epoch}); err != nil {
		logging.From(ctx).Warn("failure not recorded", "error", err.Error())
	}
}

// pushEnvelope is the body of a Pub/Sub push request.
type pushEnvelope struct {
	Message struct {
		Data      []byte `json:"data"`
		MessageID string `json:"messageId"`
	} `json:"message"`
	Subscription string `json:"subscription"`
	// DeliveryAttempt is set when the subscription has a dead-letter policy.
	DeliveryAttempt int `json:"deliveryAttempt"`
}

// PushHandler answers Pub/Sub push requests: 204 acks, 503 asks for a
// redelivery. base outlives requests only until shutdown starts, so a
// SIGTERM stops the work at the next safe point.
func (s *Service) PushHandler(base context.Context, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		var env pushEnvelope
		if err := json.Unmarshal(body, &env); err != nil || env.Message.MessageID == "" && env.Message.Data == nil {
			// Not a push envelope: redelivering it cannot help.
			logger.Warn("message rejected", "reason", "request body is not a Pub/Sub push envelope")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// Work hangs off base, not the request, so that a SIGTERM reaches
		// it; the request's end cancels it too.
		ctx, cancel := context.WithCancel(base)
		defer cancel()
		stop := context.AfterFunc(r.Context(), cancel) //nolint:contextcheck // see above
		defer stop()
		log := logger.With("message_id", env.Message.MessageID, "delivery_attempt", env.DeliveryAttempt)
		if attrs := logging.TraceAttrs(s.TraceProject, r.Header); attrs != nil {
			log = log.With(attrs...)
		}
		if err := s.Handle(logging.With(ctx, log), env.Message.Data); err != nil {
			http.Error(w, "transient failure; retry", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
