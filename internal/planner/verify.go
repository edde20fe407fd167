package planner

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Rebuilder syncs one date again from its start and publishes it. Doing
// it twice gives the same result.
type Rebuilder interface {
	Rebuild(ctx context.Context, day time.Time, reason string) error
}

// Verify compares every date in [from, to] in the source and in BigQuery
// (row count, distinct keys and the hash of the keys: schema.DayFingerprint), prints one row
// per date with its verdict, and returns how many dates still differ. With
// repair set, each differing date is rebuilt and compared again.
func (p *Planner) Verify(ctx context.Context, w io.Writer, from, to civil.Date, repair Rebuilder) (int, error) {
	reports, err := p.Compare(ctx, from, to)
	if err != nil {
		return 0, err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "date\tverdict\tsource rows/keys/hash\tbigquery rows/keys/hash\tduplicates")
	bad := 0
	for _, r := range reports {
		verdict := "ok"
		if !r.Match() {
			verdict = "MISMATCH"
			if repair != nil {
				verdict = p.repair(ctx, repair, &r)
			}
			if verdict != "repaired" {
				bad++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.Date, verdict, fp(r.Source), fp(r.Dest), r.Dest.Duplicates())
	}
	if err := tw.Flush(); err != nil {
		return bad, err
	}
	return bad, p.printUndated(ctx, w)
}

func (p *Planner) repair(ctx context.Context, repair Rebuilder, r *DateReport) string {
	reason := fmt.Sprintf("verify --repair: source %s, BigQuery %s", fp(r.Source), fp(r.Dest))
	if err := repair.Rebuild(ctx, r.Date.In(time.UTC), reason); err != nil {
		logging.From(ctx).Error("repair failed", "table", p.Table, "sync_date", r.Date.String(), "error", err.Error())
		return "repair failed"
	}
	again, err := p.Compare(ctx, r.Date, r.Date)
	if err != nil || len(again) != 1 {
		return "repair not verified"
	}
	*r = again[0]
	if !r.Match() {
		return "MISMATCH after repair"
	}
	return "repaired"
}

func fp(f schema.DayFingerprint) string { return f.String() }

// Recheck compares the last days finished dates before today and re-opens
// those whose rows differ now (rows that arrived after the date was
// finished), so that the run plans them again.
func (p *Planner) Recheck(ctx context.Context, days int) ([]civil.Date, error) {
	if days <= 0 {
		return nil, nil
	}
	today := civil.DateOf(p.now())
	reports, err := p.Compare(ctx, today.AddDays(-days), today.AddDays(-1))
	if err != nil {
		return nil, err
	}
	var reopened []civil.Date
	var entries []syncstate.Entry
	for _, r := range reports {
		if !r.Entry.IsFinished || r.Match() {
			continue
		}
		reopened = append(reopened, r.Date)
		entries = append(entries, syncstate.Entry{Table: p.Table, Date: r.Date, State: syncstate.StateReopened,
			LastMaxID: r.Entry.LastMaxID, Writer: "planner", Epoch: r.Entry.Epoch + 1,
			Detail: fmt.Sprintf("recheck: source %s, BigQuery %s", fp(r.Source), fp(r.Dest))})
		logging.From(ctx).Warn("finished date re-opened", "table", p.Table, "sync_date", r.Date.String(),
			"source_rows", r.Source.Rows, "bigquery_rows", r.Dest.Rows)
	}
	if len(entries) > 0 {
		if err := p.State.Append(ctx, entries...); err != nil {
			return nil, err
		}
	}
	return reopened, nil
}
