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
	// Append must be safe to call concurrently from many processes.
	Append(ctx context.Context, entries ...syncstate.Entry) error
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
	Table string
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
	// Now is the clock that says what day it is; time.Now when nil.
	Now func() time.Time
}

// Planned is one date the planner would publish, and why.
type Planned struct {
	Date   civil.Date
	Reason string // new, gap, unfinished, failed, today
	prev   syncstate.Entry
}

// Plan lists the dates to publish, oldest first.
func (p *Planner) Plan(ctx context.Context) ([]Planned, error) {
	now := p.now()
	start, ok, err := p.startDay(ctx)
	if err != nil || !ok {
		return nil, err
	}
	latest, err := p.State.Latest(ctx, p.Table)
	if err != nil {
		return nil, err
	}
	var newest civil.Date
	for d := range latest {
		if d.After(newest) {
			newest = d
		}
	}
	today := civil.DateOf(now)
	var out []Planned
	for d := civil.DateOf(start); !d.After(today); d = d.AddDays(1) {
		e, seen := latest[d]
		if seen && e.IsFinished {
			continue
		}
		if seen && e.State != syncstate.StateReopened && now.Sub(e.SyncedAt) < p.window(e) {
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
// dates published.
func (p *Planner) Run(ctx context.Context) ([]Planned, error) {
	if _, err := p.Recheck(ctx, p.RecheckDays); err != nil {
		return nil, err
	}
	plan, err := p.Plan(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.warnUndated(ctx); err != nil {
		return nil, err
	}
	if _, err := p.Audit(ctx); err != nil {
		return nil, err
	}
	log := logging.From(ctx)
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
	return plan, nil
}
