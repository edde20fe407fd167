package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/syncstate"
)

// StatusQuery selects what Status shows.
type StatusQuery struct {
	// From and To bound the dates; zero From is the configured start (else
	// the first date sync_control knows), zero To is today.
	From, To civil.Date
	// State keeps the date lines of one kind: finished, failed,
	// unfinished (not finished, never synced included), quarantined; or
	// paused, which keeps no date line and the summary only when the table
	// is paused. Empty keeps all. The summary always covers every date.
	State string
	// JSON writes one JSON object per line instead of aligned text.
	JSON bool
}

// StatusStates are the values StatusQuery.State accepts.
var StatusStates = []string{"finished", "failed", "unfinished", "quarantined", "paused"}

// DateLine is one date of the status report. Its JSON form has kind "date".
type DateLine struct {
	Kind       string `json:"kind"`
	Table      string `json:"table"`
	Date       string `json:"date"`
	State      string `json:"state"` // "none" when never synced
	RowsStaged int64  `json:"rows_staged"`
	SyncedAt   string `json:"synced_at"` // RFC 3339, "" when never synced
	Writer     string `json:"writer"`
	Detail     string `json:"detail"`
}

// TableStatus sums up one table's report; its JSON form has kind "summary".
type TableStatus struct {
	Kind        string  `json:"kind"`
	Table       string  `json:"table"`
	Paused      bool    `json:"paused"`
	From        string  `json:"from"`
	To          string  `json:"to"`
	Dates       int     `json:"dates"`
	Finished    int     `json:"finished"`
	FinishedPct float64 `json:"finished_pct"`
	Failed      int     `json:"failed"`
	Quarantined int     `json:"quarantined"`
	Unfinished  int     `json:"unfinished"`
	Rows        int64   `json:"rows"`
	// RowsPerSecond is the loaders' recent throughput: the rows of the
	// dates they reported on in the last hour, over the time between their
	// first and last report; 0 when fewer than two reports.
	RowsPerSecond float64 `json:"rows_per_s"`
	RowsPerHour   int64   `json:"rows_per_hour"`
	// ETASeconds: the unfinished dates' rows (estimated from the mean rows
	// of a finished date) at RowsPerSecond; -1 when unknown, 0 when done.
	ETASeconds int64 `json:"eta_s"`
	// Changes says what the table gets: append-only, or updates and
	// deletes followed (docs/changes.md).
	Changes string `json:"changes"`
}

// Status writes the state of each date in sync_control, one line per
// date as it is read, then the table's summary. It reads only
// sync_control (one query), never the source or the destination.
func (p *Planner) Status(ctx context.Context, w io.Writer, q StatusQuery) (TableStatus, error) {
	now := p.now()
	ts := TableStatus{Kind: "summary", Table: p.Table}
	paused, _, err := p.State.Paused(ctx, p.Table)
	if err != nil {
		return ts, err
	}
	ts.Paused = paused
	from, to := q.From, q.To
	if from.IsZero() && !p.Start.IsZero() {
		from = civil.DateOf(p.Start)
	}
	if to.IsZero() {
		to = civil.DateOf(now)
	}
	if q.State != "paused" && !q.JSON {
		fmt.Fprintf(w, "table %s\n", p.Table)
		fmt.Fprintf(w, "%-10s  %-11s  %12s  %-20s  %-28s  %s\n", "date", "state", "rows_staged", "synced_at", "writer", "detail")
	}
	var recent []syncstate.Entry
	var finishedRows int64
	next := from // the next date to report; zero until the first entry
	emit := func(l DateLine) error {
		ts.Dates++
		switch {
		case l.State == string(syncstate.StateFinished):
			ts.Finished++
			finishedRows += l.RowsStaged
		case l.State == string(syncstate.StateFailed):
			ts.Failed++
		case l.State == string(syncstate.StateQuarantined):
			ts.Quarantined++
		}
		ts.Rows += l.RowsStaged
		if !keep(q.State, l.State) {
			return nil
		}
		return writeLine(w, q.JSON, l)
	}
	gap := func(upTo civil.Date) error { // dates with no entry before upTo
		for ; !next.IsZero() && next.Before(upTo); next = next.AddDays(1) {
			if err := emit(DateLine{Kind: "date", Table: p.Table, Date: next.String(), State: syncstate.State("").String()}); err != nil {
				return err
			}
		}
		return nil
	}
	err = p.State.Scan(ctx, p.Table, from, to, func(e syncstate.Entry) error {
		if err := gap(e.Date); err != nil {
			return err
		}
		next = e.Date.AddDays(1)
		st := e.State
		if e.IsFinished {
			st = syncstate.StateFinished
		}
		if now.Sub(e.SyncedAt) < time.Hour && loaderState(e.State) {
			recent = append(recent, e)
		}
		return emit(DateLine{Kind: "date", Table: p.Table, Date: e.Date.String(), State: st.String(), RowsStaged: e.RowsStaged,
			SyncedAt: e.SyncedAt.UTC().Format(time.RFC3339), Writer: e.Writer, Detail: e.Detail})
	})
	if err == nil {
		err = gap(to.AddDays(1))
	}
	if err != nil {
		return ts, err
	}
	if !from.IsZero() {
		ts.From = from.String()
	} else if ts.Dates > 0 {
		ts.From = to.AddDays(1 - ts.Dates).String()
	}
	ts.To = to.String()
	ts.Unfinished = ts.Dates - ts.Finished
	if ts.Dates > 0 {
		ts.FinishedPct = math.Round(1000*float64(ts.Finished)/float64(ts.Dates)) / 10
	}
	ts.RowsPerSecond = rate(recent)
	ts.RowsPerHour = int64(ts.RowsPerSecond * 3600)
	switch {
	case ts.Unfinished == 0:
		ts.ETASeconds = 0
	case ts.RowsPerSecond > 0 && ts.Finished > 0:
		left := float64(ts.Unfinished) * float64(finishedRows) / float64(ts.Finished)
		ts.ETASeconds = int64(left / ts.RowsPerSecond)
	default:
		ts.ETASeconds = -1
	}
	if q.State == "paused" && !paused {
		return ts, nil
	}
	ts.Changes = p.Changes.Describe(max(ts.Dates-1, 0)) // the dates through yesterday
	return ts, writeSummary(w, q.JSON, ts)
}

func keep(filter, st string) bool {
	switch filter {
	case "":
		return true
	case "unfinished":
		return st != string(syncstate.StateFinished)
	case "paused":
		return false
	default:
		return st == filter
	}
}

// loaderState says a loader wrote e while working the date.
func loaderState(s syncstate.State) bool {
	return s == syncstate.StateInProgress || s == syncstate.StatePublished || s == syncstate.StateFinished
}

// rate is rows per second over recent loader entries: the rows reported
// after the first report, over the time since it; 0 (unknown) when the
// reports span less than a second.
func rate(recent []syncstate.Entry) float64 {
	if len(recent) < 2 {
		return 0
	}
	sort.Slice(recent, func(i, j int) bool { return recent[i].SyncedAt.Before(recent[j].SyncedAt) })
	span := recent[len(recent)-1].SyncedAt.Sub(recent[0].SyncedAt).Seconds()
	if span < 1 {
		return 0
	}
	var rows int64
	for _, e := range recent[1:] {
		rows += e.RowsStaged
	}
	return math.Round(10*float64(rows)/span) / 10
}

func writeLine(w io.Writer, asJSON bool, l DateLine) error {
	if asJSON {
		return json.NewEncoder(w).Encode(l)
	}
	synced, writer := l.SyncedAt, l.Writer
	if synced == "" {
		synced, writer = "-", "-"
	}
	detail := strings.Join(strings.Fields(l.Detail), " ")
	line := fmt.Sprintf("%-10s  %-11s  %12d  %-20s  %-28s  %s", l.Date, l.State, l.RowsStaged, synced, writer, detail)
	_, err := fmt.Fprintln(w, strings.TrimRight(line, " "))
	return err
}

func writeSummary(w io.Writer, asJSON bool, ts TableStatus) error {
	if asJSON {
		return json.NewEncoder(w).Encode(ts)
	}
	if ts.Changes != "" {
		if _, err := fmt.Fprintf(w, "changes: %s\n", ts.Changes); err != nil {
			return err
		}
	}
	eta := "unknown"
	if ts.ETASeconds >= 0 {
		eta = (time.Duration(ts.ETASeconds) * time.Second).String()
	}
	_, err := fmt.Fprintf(w, "summary: table=%s paused=%t dates=%d finished=%d finished_pct=%.1f failed=%d quarantined=%d unfinished=%d rows=%d rows_per_hour=%d rows_per_s=%.1f eta=%s\n",
		ts.Table, ts.Paused, ts.Dates, ts.Finished, ts.FinishedPct, ts.Failed, ts.Quarantined, ts.Unfinished,
		ts.Rows, ts.RowsPerHour, ts.RowsPerSecond, eta)
	return err
}
