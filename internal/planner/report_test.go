package planner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// noSource fails the test if the planner asks PostgreSQL anything.
type noSource struct{ t *testing.T }

func (s noSource) FirstDay(context.Context) (time.Time, bool, error) {
	s.t.Error("status asked the source for its first day")
	return time.Time{}, false, errors.New("the source must not be read")
}

func (s noSource) DayFingerprints(context.Context, time.Time, time.Time) (map[civil.Date]schema.DayFingerprint, error) {
	s.t.Error("status counted rows in the source")
	return nil, errors.New("the source must not be read")
}

// status on a 5,000-date history reads sync_control only, streams one
// line per date, and its JSON form says what its table form says.
func TestStatusOnLongHistory(t *testing.T) {
	t.Parallel()
	b := testenv.BigQuery(t)
	now := time.Date(2024, 6, 6, 12, 0, 0, 0, time.UTC)
	clock := testenv.ClockAt(now)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := syncstate.New(b.Client, b.Project, b.Dataset).WithClock(clock)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// 5,000 dates through yesterday: 3,960 finished (the last three in
	// the last hour, 600 rows each; the others 10), 40 quarantined, 500
	// failed, then 500 dates without an entry, and today.
	first := civil.DateOf(now).AddDays(-5000)
	var batch []syncstate.Entry
	for i := 0; i < 4500; i++ {
		e := syncstate.Entry{Table: "events", Date: first.AddDays(i), SyncedAt: now.Add(-48 * time.Hour), Writer: "loader@x/1"}
		switch {
		case i >= 4000:
			e.State, e.Detail = syncstate.StateFailed, "permanent error\nsecond line"
		case i%100 == 50:
			e.State, e.Detail = syncstate.StateQuarantined, "failed 3 times"
		default:
			e.State, e.IsFinished, e.RowsStaged = syncstate.StateFinished, true, 10
		}
		if i >= 3997 && i < 4000 {
			e.SyncedAt, e.RowsStaged = now.Add(-time.Duration(4000-i)*10*time.Minute), 600
		}
		batch = append(batch, e)
		if len(batch) == 500 {
			if err := st.Append(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	p := &Planner{Source: noSource{t}, State: st, Table: "events", Now: clock}

	var text, js bytes.Buffer
	sumText, err := p.Status(ctx, &text, StatusQuery{})
	if err != nil {
		t.Fatal(err)
	}
	sumJSON, err := p.Status(ctx, &js, StatusQuery{JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	want := TableStatus{Kind: "summary", Table: "events", From: first.String(), To: civil.DateOf(now).String(),
		Dates: 5001, Finished: 3960, FinishedPct: 79.2, Failed: 500, Quarantined: 40, Unfinished: 1041,
		Rows: 3957*10 + 3*600, RowsPerSecond: 1, RowsPerHour: 3600,
		// the unfinished dates at the mean of a finished one (41,370 rows
		// / 3,960) and 1 row/s
		ETASeconds: 1041 * 41370 / 3960,
		Changes:    "append-only (updates not followed; deletes are reported by the audit, not fixed)"}
	if diff := cmp.Diff(want, sumText); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sumText, sumJSON); diff != "" {
		t.Errorf("summaries of the two formats differ (-text +json):\n%s", diff)
	}

	// The two forms, parsed, hold the same dates and the same summary.
	var fromJSON []DateLine
	var jsonSummary TableStatus
	sc := bufio.NewScanner(&js)
	for sc.Scan() {
		var kind struct{ Kind string }
		if err := json.Unmarshal(sc.Bytes(), &kind); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch kind.Kind {
		case "date":
			var l DateLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			fromJSON = append(fromJSON, l)
		case "summary":
			if err := json.Unmarshal(sc.Bytes(), &jsonSummary); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("line of kind %q", kind.Kind)
		}
	}
	if diff := cmp.Diff(want, jsonSummary); diff != "" {
		t.Errorf("JSON summary line (-want +got):\n%s", diff)
	}
	fromText, summaryLine := parseTable(t, text.String())
	if len(fromText) != 5001 || len(fromJSON) != 5001 {
		t.Fatalf("date lines: %d in the table, %d in JSON; want 5001", len(fromText), len(fromJSON))
	}
	for i, l := range fromJSON {
		synced, writer := l.SyncedAt, l.Writer
		if synced == "" {
			synced, writer = "-", "-"
		}
		got := []string{l.Date, l.State, strconv.FormatInt(l.RowsStaged, 10), synced, writer}
		if diff := cmp.Diff(fromText[i][:5], got); diff != "" {
			t.Fatalf("date %d: table and JSON differ (-table +json):\n%s", i, diff)
		}
	}
	if fromText[4000][1] != "failed" || fromText[4000][5] != "permanent error second line" || fromText[4999][1] != "none" {
		t.Errorf("lines 4000 and 4999: %q, %q", fromText[4000], fromText[4999])
	}
	for _, kv := range []string{"dates=5001", "finished=3960", "finished_pct=79.2", "quarantined=40", "rows_per_s=1.0", "eta=3h1m15s"} {
		if !strings.Contains(summaryLine, " "+kv) {
			t.Errorf("summary line lacks %q: %s", kv, summaryLine)
		}
	}

	// --state keeps the lines of one kind; the summary still counts all.
	var failed bytes.Buffer
	if _, err := p.Status(ctx, &failed, StatusQuery{State: "quarantined", From: first, To: first.AddDays(999)}); err != nil {
		t.Fatal(err)
	}
	lines, summaryLine := parseTable(t, failed.String())
	if len(lines) != 10 || lines[0][0] != first.AddDays(50).String() || !strings.Contains(summaryLine, " dates=1000 ") {
		t.Errorf("quarantined in the first 1,000 dates: %d lines (%v), %s", len(lines), lines, summaryLine)
	}
}

// parseTable splits status's table form into the fields of each date line
// (date, state, rows, synced_at, writer, detail) and the summary line.
func parseTable(t *testing.T, out string) ([][]string, string) {
	t.Helper()
	var lines [][]string
	summary := ""
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		switch {
		case i == 0 && strings.HasPrefix(line, "table "), i == 1 && strings.HasPrefix(line, "date "):
		case strings.HasPrefix(line, "summary: "):
			summary = line
		case strings.HasPrefix(line, "changes: "): // what the table gets, before the summary
		default:
			f := strings.Fields(line)
			if len(f) < 5 {
				t.Fatalf("line %d: %q", i, line)
			}
			lines = append(lines, append(f[:5:5], strings.Join(f[5:], " ")))
		}
	}
	return lines, summary
}
