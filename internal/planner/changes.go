package planner

import (
	"context"
	"fmt"
	"sort"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// ChangeFinder finds the rows of the source changed since a watermark
// (pgsource.Changes). Reading twice gives the same answer for the same rows.
type ChangeFinder interface {
	// ChangedDays also returns the source's clock when the read began.
	ChangedDays(ctx context.Context, since time.Time, fresh time.Duration) (map[civil.Date]pgsource.ChangedDay, time.Time, error)
	// Now is the source's clock.
	Now(ctx context.Context) (time.Time, error)
}

// TrackingLog keeps a table's watermark and sweep position
// (syncstate.Store). Writing the same tracking twice is harmless.
type TrackingLog interface {
	Tracking(ctx context.Context, table string) (syncstate.Tracking, bool, error)
	SetTracking(ctx context.Context, table string, t syncstate.Tracking, writer string) error
}

// Changes is how the planner follows a table whose rows change: a nil
// *Changes is an append-only table (updates not followed).
type Changes struct {
	// Column is the updated-at column's name.
	Column string
	Finder ChangeFinder
	Log    TrackingLog
	// Grace: each run looks again at rows changed up to Grace before the
	// newest change the previous run read, for changes that commit late
	// (a transaction stamps updated-at when it runs, not when it commits)
	// or were stamped by a clock that lags.
	Grace time.Duration
	// Fresh: a row whose updated-at value is at most Fresh after its
	// timestamp cannot have been read before it changed (see
	// pgsource.Changes.ChangedDays): it does not re-open its day. Half
	// the loaders' finish grace.
	Fresh time.Duration
	// SweepDays is how many days each run compares by fingerprint to find
	// deleted and moved rows; 0 turns the sweep off.
	SweepDays int
	// SourceVersions and DestVersions sum each day's updated-at values
	// on each side (pgsource.Changes.DayVersions): the sweep also
	// re-opens a day whose keys match but whose sums differ, an update
	// the watermark missed (a transaction longer than the grace, a clock
	// lagging more). ok is false when a side cannot say (the column is
	// not synced); nil: not compared.
	SourceVersions, DestVersions DayVersions
}

// DayVersions sums the updated-at values of each UTC day in [from, to).
type DayVersions func(ctx context.Context, from, to time.Time) (sums map[civil.Date]int64, ok bool, err error)

// Describe is what the table gets, in one line (planner check, status);
// days is its history's length in days (0: unknown).
func (c *Changes) Describe(days int) string {
	if c == nil {
		return "append-only (updates not followed; deletes are reported by the audit, not fixed)"
	}
	s := fmt.Sprintf("updates followed (updated_at column %s, grace %s)", c.Column, c.Grace)
	switch {
	case c.SweepDays <= 0:
		s += "; deletes not followed (SYNC_SWEEP_DAYS=0)"
	case days > 0:
		s += fmt.Sprintf("; deletes found within %d runs (%d days of history, %d a run)", c.DeletesWithin(days), days, c.SweepDays)
	default:
		s += fmt.Sprintf("; deletes found by a sweep of %d days a run", c.SweepDays)
	}
	return s
}

// DeletesWithin is how many runs the sweep takes to cover days dates of
// history (0 when the sweep is off).
func (c *Changes) DeletesWithin(days int) int {
	if c == nil || c.SweepDays <= 0 {
		return 0
	}
	return max(1, (days+c.SweepDays-1)/c.SweepDays)
}

// Followed is what one run found of a table's changes.
type Followed struct {
	// Changed: days re-opened because rows in them changed.
	Changed []civil.Date
	// Swept: days the sweep compared; Differed: those it re-opened.
	Swept, Differed []civil.Date
	Watermark       time.Time
}

// follow re-opens the days whose rows changed since the watermark and
// the days the sweep finds different, then records the new watermark and
// sweep position; the run then plans the re-opened days like any
// unfinished date. The re-openings are recorded before the watermark, so
// a run that dies between the two only makes the next look again.
func (p *Planner) follow(ctx context.Context) (Followed, error) {
	var f Followed
	c := p.Changes
	tr, _, err := c.Log.Tracking(ctx, p.Table)
	if err != nil {
		return f, err
	}
	latest, err := p.State.Latest(ctx, p.Table)
	if err != nil {
		return f, err
	}
	// The watermark is the source's clock when the previous run began to
	// read, minus the grace: every change stamped before it had committed
	// by then (a transaction longer than the grace aside), so this run
	// reads the changes after it. A change within the grace before a run
	// is read by that run and the next one.
	since := tr.Watermark
	var days map[civil.Date]pgsource.ChangedDay
	var readAt time.Time
	if since.IsZero() && len(latest) == 0 {
		// A table never synced: the plan reads every row anyway.
		readAt, err = c.Finder.Now(ctx)
	} else {
		// (A table synced before it followed changes is read whole once,
		// through the index: every day changed since its reading re-opens.)
		days, readAt, err = c.Finder.ChangedDays(ctx, since, c.Fresh)
	}
	if err != nil {
		return f, err
	}
	f.Watermark = readAt.Add(-c.Grace)
	if days == nil {
		// Nothing synced yet: every row committed so far is read by the
		// plan's first reading of its day.
		f.Watermark = readAt
	}
	if f.Watermark.Before(tr.Watermark) {
		f.Watermark = tr.Watermark
	}
	reopen := map[civil.Date]string{}
	for d, cd := range days {
		if cd.Changed == 0 {
			continue
		}
		if e, seen := latest[d]; !seen || e.State == syncstate.StateQuarantined {
			continue // never synced: the plan reads it whole anyway; quarantined: an operator's
		}
		reopen[d] = fmt.Sprintf("changes: %d rows changed since %s", cd.Changed, since.Format(time.RFC3339))
		f.Changed = append(f.Changed, d)
	}
	next, err := p.sweep(ctx, tr.SweepNext, latest, reopen, &f)
	if err != nil {
		return f, err
	}
	if err := p.reopen(ctx, latest, reopen); err != nil {
		return f, err
	}
	if err := c.Log.SetTracking(ctx, p.Table, syncstate.Tracking{Watermark: f.Watermark, SweepNext: next}, "planner"); err != nil {
		return f, fmt.Errorf("record the watermark of %s: %w", p.Table, err)
	}
	sort.Slice(f.Changed, func(i, j int) bool { return f.Changed[i].Before(f.Changed[j]) })
	logging.From(ctx).Info("changes followed", "table", p.Table, "days_changed", len(f.Changed), "days_swept", len(f.Swept),
		"days_differing", len(f.Differed), "watermark", f.Watermark.Format(time.RFC3339Nano))
	return f, nil
}

// reopen re-opens each date of dates (date → why) the way `planner
// resync` does: its staging table is dropped first, so the next sync
// makes a new generation and adopts nothing staged before the change,
// then a reopened entry starts the date's next epoch, so a loader still
// on the old generation records nothing that counts.
func (p *Planner) reopen(ctx context.Context, latest map[civil.Date]syncstate.Entry, dates map[civil.Date]string) error {
	if len(dates) == 0 {
		return nil
	}
	if p.Staging == nil {
		return fmt.Errorf("following changes of %s needs the staging dataset", p.Table)
	}
	var entries []syncstate.Entry
	for d, why := range dates {
		if err := p.Staging.DropStaging(ctx, d.In(time.UTC)); err != nil {
			return fmt.Errorf("re-open %s %s: %w", p.Table, d, err)
		}
		e := latest[d]
		entries = append(entries, syncstate.Entry{Table: p.Table, Date: d, State: syncstate.StateReopened, Writer: "planner",
			LastMaxID: e.LastMaxID, Detail: why, Epoch: e.Epoch + 1})
		e.State, e.Epoch, e.IsFinished = syncstate.StateReopened, e.Epoch+1, false
		latest[d] = e
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Date.Before(entries[j].Date) })
	if err := p.State.Append(ctx, entries...); err != nil {
		return fmt.Errorf("re-open changed dates of %s: %w", p.Table, err)
	}
	for _, e := range entries {
		logging.From(ctx).Info("date re-opened for changes", "table", p.Table, "sync_date", e.Date.String(), "reason", e.Detail)
	}
	return nil
}

// earliestOpen is the earliest date of latest that the plan must still
// bring up to date although it may lie before the source's first day (a
// day whose rows were all deleted, or every day after a TRUNCATE); ok is
// false when there is none. Only for a table that follows changes.
func (p *Planner) earliestOpen(latest map[civil.Date]syncstate.Entry) (civil.Date, bool) {
	var first civil.Date
	if p.Changes == nil {
		return first, false
	}
	for d, e := range latest {
		if e.IsFinished || e.State == syncstate.StateQuarantined {
			continue
		}
		if first.IsZero() || d.Before(first) {
			first = d
		}
	}
	return first, !first.IsZero()
}
