package planner

import (
	"context"
	"log/slog"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/syncstate"
)

// Summary is one table's state as the planner sees it after a run: the
// figures the log-based metrics and alerts of terraform/modules/monitoring
// read from the "table status" log line.
type Summary struct {
	Dates, Finished, Failed, InFlight int
	Quarantined                       int
	OldestUnfinished, NewestFinished  civil.Date // zero when none
	// RowsStagedLastHour: rows staged so far by the dates worked on in the
	// last hour (their newest entry's rows_staged).
	RowsStagedLastHour int64
	// FreshnessLag: from the end of the newest finished day to now; 0
	// when no date is finished.
	FreshnessLag time.Duration
	// Undated: source rows that belong to no date (timestamp NULL,
	// infinite or outside BigQuery's range), never synced.
	Undated int64
}

// Summarize reads sync_control and sums up the table's dates from the
// start date through today.
func (p *Planner) Summarize(ctx context.Context) (Summary, error) {
	now := p.now()
	var s Summary
	start, ok, err := p.startDay(ctx)
	if err != nil || !ok {
		return s, err
	}
	latest, err := p.State.Latest(ctx, p.Table)
	if err != nil {
		return s, err
	}
	today := civil.DateOf(now)
	for d := civil.DateOf(start); !d.After(today); d = d.AddDays(1) {
		s.Dates++
		e, seen := latest[d]
		switch {
		case seen && e.IsFinished:
			s.Finished++
			s.NewestFinished = d
		case seen && e.State == syncstate.StateFailed:
			s.Failed++
		case seen && e.State == syncstate.StateQuarantined:
			s.Quarantined++
		case seen && now.Sub(e.SyncedAt) < p.window(e):
			s.InFlight++
		}
		if !(seen && e.IsFinished) && s.OldestUnfinished.IsZero() {
			s.OldestUnfinished = d
		}
		if seen && now.Sub(e.SyncedAt) < time.Hour {
			s.RowsStagedLastHour += e.RowsStaged
		}
	}
	if s.Undated, err = p.Undated(ctx); err != nil {
		return s, err
	}
	if !s.NewestFinished.IsZero() {
		end := s.NewestFinished.AddDays(1).In(time.UTC)
		s.FreshnessLag = max(now.Sub(end), 0).Truncate(time.Second)
	}
	return s, nil
}

// Log writes s as the "table status" line: numbers as JSON numbers, dates
// as YYYY-MM-DD ("" when none); and, when the source has rows that belong
// to no date, a WARNING with their count.
func (s Summary) Log(log *slog.Logger, table string) {
	if s.Undated > 0 {
		log.Warn("rows without a date not synced", "table", table, "rows_undated", s.Undated, "why", undatedWhy)
	}
	date := func(d civil.Date) string {
		if d.IsZero() {
			return ""
		}
		return d.String()
	}
	log.Info("table status", "table", table, "dates_total", s.Dates, "dates_finished", s.Finished,
		"dates_failed", s.Failed, "dates_in_flight", s.InFlight,
		"dates_quarantined", s.Quarantined, "oldest_unfinished", date(s.OldestUnfinished),
		"newest_finished", date(s.NewestFinished), "rows_staged_last_hour", s.RowsStagedLastHour,
		"freshness_lag_s", int64(s.FreshnessLag.Seconds()), "rows_undated", s.Undated)
}
