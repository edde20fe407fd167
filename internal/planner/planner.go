// Package planner finds the dates of a table that are not finished and
// publishes one message per date, oldest first, so gaps are filled before
// new days. Running it twice at once is harmless: loaders are idempotent
// per date, and a date planned moments ago counts as in flight.
package planner

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/message"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Source is what the planner asks of PostgreSQL.
type Source interface {
	// FirstDay is the UTC date of the earliest row; ok is false when empty.
	FirstDay(ctx context.Context) (day time.Time, ok bool, err error)
	Fingerprinter
}

// State is what the planner reads and writes of sync_control.
type State interface {
	Latest(ctx context.Context, table string) (map[civil.Date]syncstate.Entry, error)
	// Scan streams the current entries of [from, to], oldest first.
	Scan(ctx context.Context, table string, from, to civil.Date, fn func(syncstate.Entry) error) error
	// FailureCounts counts each date's failures since it was re-opened.
	FailureCounts(ctx context.Context, table string) (map[civil.Date]int, error)
	// Paused reports the table's pause, and its newest pause or resume entry.
	Paused(ctx context.Context, table string) (bool, syncstate.Entry, error)
	// Append must be safe to call concurrently from many processes.
	Append(ctx context.Context, entries ...syncstate.Entry) error
}

// Staging drops the staging table of one day of the table, so that the
// day's next sync starts a new staging generation; dropping a table that
// is not there is no error. StagingDays lists the days that have one
// (DropFinishedStaging).
type Staging interface {
	DropStaging(ctx context.Context, day time.Time) error
	StagingDays(ctx context.Context) ([]time.Time, error)
}

// Publisher publishes one message; publishing twice is harmless.
type Publisher interface {
	Publish(ctx context.Context, data []byte) error
}

// Planner plans one table.
type Planner struct {
	Source Source
	// Dest is the BigQuery copy, for status, verify and the recheck.
	Dest  Fingerprinter
	State State
	Pub   Publisher
	// Staging is where Resync drops the staging tables of the dates it
	// re-opens, and Run those of finished dates (DropFinishedStaging).
	Staging Staging
	Table   string
	// Start is the first date to sync; zero means the source's first day.
	Start time.Time
	// InFlight is how long a date with a fresh entry is left alone.
	InFlight time.Duration
	// Queued is how long a date whose newest entry is "planned" — its
	// message published, no loader on it yet — is left alone: the message
	// may be waiting behind a back-fill's backlog in the subscription, and
	// publishing it again would only grow that backlog. Size it above the
	// longest wait a back-fill can see (dates per run ÷ loader capacity);
	// below InFlight it has no effect.
	Queued time.Duration
	// MaxDates caps the messages of one run.
	MaxDates int
	// RecheckDays is how many days before today Run compares again, to
	// re-open finished dates that rows reached late.
	RecheckDays int
	// QuarantineAfter: a date that failed this many times since it was
	// last re-opened is quarantined instead of planned; 0 never quarantines.
	QuarantineAfter int
	// Now is the clock that says what day it is; time.Now when nil.
	Now func() time.Time
	// Changes follows the table's updated and deleted rows; nil for an
	// append-only table (see changes.go).
	Changes *Changes
}

// Planned is one date the planner would publish, and why.
type Planned struct {
	Date   civil.Date
	Reason string // new, gap, unfinished, failed, reopened, today; quarantine: not published but quarantined
	prev   syncstate.Entry
	// failures counts the date's failures when Reason is quarantine.
	failures int
}

// ReasonQuarantine is the reason of a date the run quarantines instead
// of publishing.
const ReasonQuarantine = "quarantine"

// Plan lists the dates to publish, oldest first; a paused table has none.
func (p *Planner) Plan(ctx context.Context) ([]Planned, error) {
	paused, ctl, err := p.State.Paused(ctx, p.Table)
	if err != nil || paused {
		return nil, err
	}
	return p.plan(ctx, ctl)
}

// plan is Plan for a table that is not paused; ctl is its newest pause or
// resume entry (zero if none).
func (p *Planner) plan(ctx context.Context, ctl syncstate.Entry) ([]Planned, error) {
	now := p.now()
	start, ok, err := p.startDay(ctx)
	if err != nil || (!ok && p.Changes == nil) {
		return nil, err
	}
	latest, err := p.State.Latest(ctx, p.Table)
	if err != nil {
		return nil, err
	}
	// A table that follows changes also brings back days before its
	// source's first row (rows deleted, a TRUNCATE): only those days of
	// that stretch that sync_control holds open are planned.
	from, sourceOK := civil.DateOf(start), ok
	if early, open := p.earliestOpen(latest); open && (!ok || early.Before(from)) {
		from, ok = early, true
	}
	if !ok {
		return nil, nil
	}
	sourceFrom := civil.DateOf(start)
	var failures map[civil.Date]int
	if p.QuarantineAfter > 0 {
		for _, e := range latest {
			if e.State == syncstate.StateFailed {
				if failures, err = p.State.FailureCounts(ctx, p.Table); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	// While the table was paused, loaders acked its messages without
	// work: a date planned before the resume is no longer queued.
	var resumedAt time.Time
	if ctl.State == syncstate.StateResumed {
		resumedAt = ctl.SyncedAt
	}
	var newest civil.Date
	for d := range latest {
		if d.After(newest) {
			newest = d
		}
	}
	today := civil.DateOf(now)
	var out []Planned
	for d := from; !d.After(today); d = d.AddDays(1) {
		e, seen := latest[d]
		if seen && (e.IsFinished || e.State == syncstate.StateQuarantined) {
			continue
		}
		if !seen && (!sourceOK || d.Before(sourceFrom)) {
			continue // before the source's first row, never synced: nothing to do
		}
		if n := failures[d]; seen && e.State == syncstate.StateFailed && p.QuarantineAfter > 0 && n >= p.QuarantineAfter {
			out = append(out, Planned{Date: d, Reason: ReasonQuarantine, prev: e, failures: n})
			continue
		}
		window := p.window(e)
		if e.State == syncstate.StatePlanned && e.SyncedAt.Before(resumedAt) {
			window = 0
		}
		if seen && e.State != syncstate.StateReopened && now.Sub(e.SyncedAt) < window {
			continue // in flight, or waiting in the queue
		}
		reason := "new"
		switch {
		case d == today:
			reason = "today"
		case seen && e.State == syncstate.StateFailed:
			reason = "failed"
		case seen && e.State == syncstate.StateReopened:
			reason = "reopened"
		case seen:
			reason = "unfinished"
		case d.Before(newest):
			reason = "gap"
		}
		out = append(out, Planned{Date: d, Reason: reason, prev: e})
		if p.MaxDates > 0 && len(out) >= p.MaxDates {
			break
		}
	}
	return out, nil
}

// window is how long after its newest entry a date counts as in flight.
func (p *Planner) window(e syncstate.Entry) time.Duration {
	if e.State == syncstate.StatePlanned {
		return max(p.InFlight, p.Queued)
	}
	return p.InFlight
}

func (p *Planner) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

// startDay is the configured start, else the source's first day; ok is
// false when neither exists (an empty table).
func (p *Planner) startDay(ctx context.Context) (time.Time, bool, error) {
	if !p.Start.IsZero() {
		return p.Start, true, nil
	}
	return p.Source.FirstDay(ctx)
}

// Run re-checks recent finished dates, plans and publishes; it returns the
// dates published. A paused table is left alone. Dates that failed
// QuarantineAfter times are quarantined instead, each logged at ERROR.
func (p *Planner) Run(ctx context.Context) ([]Planned, error) {
	log := logging.From(ctx)
	paused, ctl, err := p.State.Paused(ctx, p.Table)
	if err != nil {
		return nil, err
	}
	if paused {
		log.Info("table paused; not planned", "table", p.Table, "paused_by", ctl.Writer, "reason", ctl.Detail)
		return nil, nil
	}
	if _, err := p.Recheck(ctx, p.RecheckDays); err != nil {
		return nil, err
	}
	if p.Changes != nil {
		if _, err := p.follow(ctx); err != nil {
			return nil, err
		}
	}
	plan, err := p.plan(ctx, ctl)
	if err != nil {
		return nil, err
	}
	if plan, err = p.quarantine(ctx, plan); err != nil {
		return nil, err
	}
	if p.Changes == nil || p.Changes.SweepDays <= 0 {
		// (A table whose sweep re-opens the days that differ needs no
		// report of them.)
		if _, err := p.Audit(ctx); err != nil {
			return nil, err
		}
	}
	var entries []syncstate.Entry
	for _, d := range plan {
		day := d.Date.In(time.UTC)
		if err := p.Pub.Publish(ctx, message.New(p.Table, day).Encode()); err != nil {
			return nil, fmt.Errorf("publish %s %s: %w", p.Table, d.Date, err)
		}
		log.Info("date planned", "table", p.Table, "sync_date", d.Date.String(), "reason", d.Reason)
		// Keep the position fields so the sync_control view still shows them.
		e := d.prev
		e.Table, e.Date, e.State, e.IsFinished, e.SyncedAt = p.Table, d.Date, syncstate.StatePlanned, false, time.Time{}
		e.Detail, e.Writer = "", "planner"
		entries = append(entries, e)
	}
	if len(entries) > 0 {
		if err := p.State.Append(ctx, entries...); err != nil {
			// The messages are out; the worst case is a second message per
			// date from the next run, which loaders absorb.
			log.Warn("planned dates not recorded", "error", err.Error())
		}
	}
	p.cleanStaging(ctx)
	return plan, nil
}

// quarantine records the dates of plan whose reason is quarantine and
// returns the others.
func (p *Planner) quarantine(ctx context.Context, plan []Planned) ([]Planned, error) {
	var rest []Planned
	var entries []syncstate.Entry
	for _, d := range plan {
		if d.Reason != ReasonQuarantine {
			rest = append(rest, d)
			continue
		}
		detail := fmt.Sprintf("failed %d times; last: %s", d.failures, d.prev.Detail)
		if len(detail) > 1000 {
			detail = detail[:1000]
		}
		entries = append(entries, syncstate.Entry{Table: p.Table, Date: d.Date, State: syncstate.StateQuarantined,
			LastMaxID: d.prev.LastMaxID, Detail: detail, Writer: "planner", Epoch: d.prev.Epoch})
	}
	if len(entries) == 0 {
		return rest, nil
	}
	if err := p.State.Append(ctx, entries...); err != nil {
		return nil, fmt.Errorf("record quarantined dates: %w", err)
	}
	for _, e := range entries {
		// The log-based metric pgbq_dates_quarantined counts these lines.
		logging.From(ctx).Error("date quarantined", "table", p.Table, "sync_date", e.Date.String(), "detail", e.Detail)
	}
	return rest, nil
}
