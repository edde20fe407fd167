package planner

import (
	"context"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/logging"
)

// AuditDays is how many finished dates older than the recheck window each
// run compares again, one block chosen by the hour, so that
// rows reaching an old date late (or a column back-filled in PostgreSQL)
// are found without fingerprinting the whole history on every run.
const AuditDays = 31

// StaleMessage is the ERROR line of a finished date that differs from the
// source outside the recheck window: the planner does not re-open such a
// date by itself (rebuilding old dates is an operator's decision), so the
// monitoring alerts on the line (docs/runbook.md, "Alert: finished dates differ").
const StaleMessage = "finished date differs"

// Audit compares one block of finished dates older than the recheck
// window and logs each that differs at ERROR (StaleMessage); it returns
// those dates.
func (p *Planner) Audit(ctx context.Context) ([]civil.Date, error) {
	if p.Dest == nil {
		return nil, nil // nothing to compare with (a planner that only plans)
	}
	start, ok, err := p.startDay(ctx)
	if err != nil || !ok {
		return nil, err
	}
	now := p.now()
	first, last := civil.DateOf(start), civil.DateOf(now).AddDays(-max(p.RecheckDays, 0)-1)
	if last.Before(first) {
		return nil, nil
	}
	from, to := first, last
	if n := last.DaysSince(first) + 1; n > AuditDays {
		blocks := uint64((n + AuditDays - 1) / AuditDays)
		from = first.AddDays(int(auditSlot(now)%blocks) * AuditDays)
		if to = from.AddDays(AuditDays - 1); to.After(last) {
			to = last
		}
	}
	reports, err := p.Compare(ctx, from, to)
	if err != nil {
		return nil, err
	}
	var stale []civil.Date
	for _, r := range reports {
		if r.Entry.IsFinished && !r.Match() {
			stale = append(stale, r.Date)
			p.logStale(ctx, r)
		}
	}
	return stale, nil
}

// auditSlot picks the hour's block: a hash of the hour, so that runs on
// any schedule (every 2 h, every 6 h) still reach every block, where a
// plain hour counter would skip those its period shares a factor with.
func auditSlot(now time.Time) uint64 {
	// splitmix64's finalizer: every output bit depends on every input bit.
	x := uint64(now.Unix()/3600) + 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// logStale logs r, a finished date that differs, at ERROR.
func (p *Planner) logStale(ctx context.Context, r DateReport) {
	logging.From(ctx).Error(StaleMessage, "table", p.Table, "sync_date", r.Date.String(),
		"source", fp(r.Source), "bigquery", fp(r.Dest),
		"action", "planner resync --table "+p.Table+" --from "+r.Date.String()+" --to "+r.Date.String())
}
