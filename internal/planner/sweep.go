package planner

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/syncstate"
)

// sweep compares the per-day fingerprints of the window of SweepDays
// days that starts at from (the history's first day when zero or outside
// it) on both sides and adds each day that differs and is at rest to
// reopen; it returns where the next run's window starts. The history is
// every day from the earliest of the source's first day and the first
// date sync_control knows (days that now exist only in BigQuery: rows
// deleted, a TRUNCATE) through yesterday, so the sweep covers it in
// ceil(days/SweepDays) runs. Today is not swept: it is published again
// on every run; a delete in it fails its publish (BigQuery holding more
// rows than the source), and a failed date that holds more rows than the
// source is re-opened here on every run, whatever the window.
func (p *Planner) sweep(ctx context.Context, from civil.Date, latest map[civil.Date]syncstate.Entry,
	reopen map[civil.Date]string, f *Followed) (civil.Date, error) {
	n := p.Changes.SweepDays
	if n <= 0 || p.Dest == nil {
		return civil.Date{}, nil
	}
	if err := p.overfull(ctx, latest, reopen); err != nil {
		return civil.Date{}, err
	}
	first, ok, err := p.history(ctx, latest)
	if err != nil || !ok {
		return civil.Date{}, err
	}
	last := civil.DateOf(p.now()).AddDays(-1)
	if last.Before(first) {
		return civil.Date{}, nil
	}
	windows, next := sweepWindows(first, last, from, n)
	for _, w := range windows {
		reports, err := p.Compare(ctx, w[0], w[1])
		if err != nil {
			return civil.Date{}, err
		}
		sv, dv, versions, err := p.versions(ctx, w[0], w[1])
		if err != nil {
			return civil.Date{}, err
		}
		for _, r := range reports {
			f.Swept = append(f.Swept, r.Date)
			if !atRest(r) {
				continue
			}
			why := fmt.Sprintf("sweep: source %s, BigQuery %s", fp(r.Source), fp(r.Dest))
			if r.Match() {
				if !versions || sv[r.Date] == dv[r.Date] {
					continue
				}
				why = fmt.Sprintf("sweep: same keys, updated-at sums differ (source %d, BigQuery %d)", sv[r.Date], dv[r.Date])
			}
			if _, already := reopen[r.Date]; !already {
				reopen[r.Date] = why
			}
			f.Differed = append(f.Differed, r.Date)
		}
	}
	return next, nil
}

// versions sums the updated-at values of [from, to] on both sides; ok is
// false when they are not compared.
func (p *Planner) versions(ctx context.Context, from, to civil.Date) (src, dest map[civil.Date]int64, ok bool, err error) {
	c := p.Changes
	if c.SourceVersions == nil || c.DestVersions == nil {
		return nil, nil, false, nil
	}
	start, end := from.In(time.UTC), to.AddDays(1).In(time.UTC)
	if src, ok, err = c.SourceVersions(ctx, start, end); err != nil || !ok {
		return nil, nil, false, err
	}
	dest, ok, err = c.DestVersions(ctx, start, end)
	return src, dest, ok, err
}

// sweepWindows is the window of n days of [first, last] that starts at
// from (first when from is zero or outside), wrapping around to first
// when it passes last, as one or two ranges; and where the next window
// starts. Runs that each take the next window cover the n-day stretch
// after another, so ceil(days/n) of them cover every day.
func sweepWindows(first, last, from civil.Date, n int) (windows [][2]civil.Date, next civil.Date) {
	days := last.DaysSince(first) + 1
	if n >= days {
		return [][2]civil.Date{{first, last}}, first
	}
	if from.IsZero() || from.Before(first) || from.After(last) {
		from = first
	}
	to := from.AddDays(n - 1)
	if !to.After(last) {
		next = to.AddDays(1)
		if next.After(last) {
			next = first
		}
		return [][2]civil.Date{{from, to}}, next
	}
	rest := to.DaysSince(last) // days past last, taken from the start
	wrapTo := first.AddDays(rest - 1)
	return [][2]civil.Date{{from, last}, {first, wrapTo}}, wrapTo.AddDays(1)
}

// atRest reports whether the sweep may re-open r's date: one no loader
// works on (finished, failed, mismatched), or one sync_control never
// recorded that BigQuery holds rows for. A date in flight is left to its
// loader, which compares counts after its publish.
func atRest(r DateReport) bool {
	if !r.Seen {
		return r.Dest.Rows > 0
	}
	switch {
	case r.Entry.IsFinished, r.Entry.State == syncstate.StateFailed, r.Entry.State == syncstate.StateMismatch:
		return true
	}
	return false
}

// overfull adds to reopen each failed date whose BigQuery day holds more
// rows than the source's: rows deleted after they were staged, which
// only a new staging generation removes.
func (p *Planner) overfull(ctx context.Context, latest map[civil.Date]syncstate.Entry, reopen map[civil.Date]string) error {
	for d, e := range latest {
		if e.State != syncstate.StateFailed {
			continue
		}
		start, end := d.In(time.UTC), d.AddDays(1).In(time.UTC)
		sf, err := p.Source.DayFingerprints(ctx, start, end)
		if err != nil {
			return err
		}
		df, err := p.Dest.DayFingerprints(ctx, start, end)
		if err != nil {
			return err
		}
		if df[d].Rows > sf[d].Rows {
			reopen[d] = fmt.Sprintf("failed with more rows in BigQuery (%d) than in the source (%d): rows deleted", df[d].Rows, sf[d].Rows)
		}
	}
	return nil
}

// history is the first day the sweep covers: the earlier of the source's
// first day and the first date sync_control records; ok is false when
// there is neither.
func (p *Planner) history(ctx context.Context, latest map[civil.Date]syncstate.Entry) (civil.Date, bool, error) {
	var first civil.Date
	for d := range latest {
		if first.IsZero() || d.Before(first) {
			first = d
		}
	}
	start, ok, err := p.startDay(ctx)
	if err != nil {
		return first, false, err
	}
	if ok && (first.IsZero() || civil.DateOf(start).Before(first)) {
		first = civil.DateOf(start)
	}
	return first, !first.IsZero(), nil
}
