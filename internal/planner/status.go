package planner

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Fingerprinter summarises each UTC day in [from, to) that has rows.
type Fingerprinter interface {
	DayFingerprints(ctx context.Context, from, to time.Time) (map[civil.Date]schema.DayFingerprint, error)
}

// DateReport compares one date in the source and in BigQuery.
type DateReport struct {
	Date         civil.Date
	Entry        syncstate.Entry
	Seen         bool // Entry is set
	Source, Dest schema.DayFingerprint
}

// Match reports whether BigQuery holds the source's rows for the date:
// the same count and the same keys by hash, no key twice
// (schema.DayFingerprint).
func (r DateReport) Match() bool {
	return r.Source.Rows == r.Dest.Rows && r.Source.Hash == r.Dest.Hash && r.Dest.Duplicates() == 0
}

// Compare fingerprints every date in [from, to] on both sides.
func (p *Planner) Compare(ctx context.Context, from, to civil.Date) ([]DateReport, error) {
	latest, err := p.State.Latest(ctx, p.Table)
	if err != nil {
		return nil, err
	}
	start, end := from.In(time.UTC), to.AddDays(1).In(time.UTC)
	sf, err := p.Source.DayFingerprints(ctx, start, end)
	if err != nil {
		return nil, err
	}
	df, err := p.Dest.DayFingerprints(ctx, start, end)
	if err != nil {
		return nil, err
	}
	var out []DateReport
	for d := from; !d.After(to); d = d.AddDays(1) {
		e, seen := latest[d]
		out = append(out, DateReport{Date: d, Entry: e, Seen: seen, Source: sf[d], Dest: df[d]})
	}
	return out, nil
}

// Range is the planner's dates: the start through today; ok is false
// when the table is empty and no start is configured.
func (p *Planner) Range(ctx context.Context) (from, to civil.Date, ok bool, err error) {
	start, ok, err := p.startDay(ctx)
	if err != nil || !ok {
		return civil.Date{}, civil.Date{}, false, err
	}
	return civil.DateOf(start), civil.DateOf(p.now()), true, nil
}

// Totals sum a status report.
type Totals struct {
	Dates, Finished          int
	SourceRows, BigQueryRows int64
	Duplicates               int64
	Mismatched               int
}

// Recount prints, for every date from the start through today, its state
// in sync_control and the rows counted now in the source and in BigQuery
// (`planner status --verify`).
func (p *Planner) Recount(ctx context.Context, w io.Writer) (Totals, error) {
	var tot Totals
	from, to, ok, err := p.Range(ctx)
	if err != nil {
		return tot, err
	}
	if !ok {
		fmt.Fprintln(w, "the source table is empty")
		return tot, nil
	}
	reports, err := p.Compare(ctx, from, to)
	if err != nil {
		return tot, err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "date\tstatus\tsource_rows\tbigquery_rows\tduplicates\tmatch\t")
	for _, r := range reports {
		status := "never synced"
		if r.Seen {
			status = r.Entry.State.String()
		}
		dup := r.Dest.Duplicates()
		match := "yes"
		if !r.Match() {
			match = "NO"
			tot.Mismatched++
			if r.Entry.IsFinished {
				p.logStale(ctx, r)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t\n", r.Date, status, r.Source.Rows, r.Dest.Rows, dup, match)
		tot.Dates++
		if r.Entry.IsFinished {
			tot.Finished++
		}
		tot.SourceRows += r.Source.Rows
		tot.BigQueryRows += r.Dest.Rows
		tot.Duplicates += dup
	}
	if err := tw.Flush(); err != nil {
		return tot, err
	}
	return tot, p.printUndated(ctx, w)
}
