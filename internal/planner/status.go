package planner

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Counter counts rows per UTC day.
type SourceCounter interface {
	DayCounts(ctx context.Context, from, to time.Time) (map[civil.Date]int64, error)
}

// DestCounter counts destination rows and distinct ids per UTC day.
type DestCounter interface {
	DayCounts(ctx context.Context, from, to time.Time) (map[civil.Date]bq.DayStats, error)
}

// Totals sum a status report.
type Totals struct {
	Dates, Finished          int
	SourceRows, BigQueryRows int64
	Duplicates               int64
	Mismatched               int
}

// Status prints, for every date from the start through today, its state
// in sync_control and the rows counted now in the source and in BigQuery.
func (p *Planner) Status(ctx context.Context, w io.Writer, src SourceCounter, dst DestCounter) (Totals, error) {
	var tot Totals
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	start, ok, err := p.startDay(ctx)
	if err != nil {
		return tot, err
	}
	if !ok {
		fmt.Fprintln(w, "the source table is empty")
		return tot, nil
	}
	end := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	latest, err := p.State.Latest(ctx, p.Table)
	if err != nil {
		return tot, err
	}
	sc, err := src.DayCounts(ctx, start, end)
	if err != nil {
		return tot, err
	}
	dc, err := dst.DayCounts(ctx, start, end)
	if err != nil {
		return tot, err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "date\tstatus\tsource_rows\tbigquery_rows\tduplicates\tmatch\t")
	for d := civil.DateOf(start); d.Before(civil.DateOf(end)); d = d.AddDays(1) {
		e, seen := latest[d]
		status := "never synced"
		if seen {
			status = e.State
		}
		s, b := sc[d], dc[d]
		dup := b.Rows - b.DistinctIDs
		match := "yes"
		if s != b.Rows || dup != 0 {
			match = "NO"
			tot.Mismatched++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t\n", d, status, s, b.Rows, dup, match)
		tot.Dates++
		if seen && e.State == syncstate.StateFinished {
			tot.Finished++
		}
		tot.SourceRows += s
		tot.BigQueryRows += b.Rows
		tot.Duplicates += dup
	}
	return tot, tw.Flush()
}
