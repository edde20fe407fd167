package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/jackc/pgx/v5"
	"google.golang.org/api/iterator"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// The invariant, checked while the run goes on: whenever sync_control
// says a date is finished, the destination day equals the source as of
// that finish — the same ids, each once, with every column's value the
// same (columns added mid-run included) — over the rows committed before
// the finish was recorded. Only the run itself writes the source after
// the seed, and it records each row it commits (chaosRow): those
// committed after the finish, or within lateWindow before it (a row that
// commits between the loader's count and its finish is a late commit the
// recheck exists for), are left out on both sides, and must instead be
// in BigQuery when the run ends.

// lateWindow is how long before a finish a committed row may still be
// missed by it: the loader counts the source, then stamps the finish.
const lateWindow = time.Minute

// chaosRow is a row the run committed into the source during the run.
type chaosRow struct {
	id   int64
	done time.Time // when its commit had returned
}

// colKinds are the source table's columns (the seed's and the one added
// mid-run) by how their values compare.
var colKinds = map[string]string{
	"id": "int", "created_at": "ts", "user_id": "int", "kind": "str", "note": "str", "amount": "num", "score": "float",
	"ok": "bool", "payload": "json", "day": "date", "uid": "str", "ip": "str", "region": "str",
}

// pgInsert runs sql, an INSERT, adding RETURNING id, and records the rows
// it committed.
func (h *harness) pgInsert(ctx context.Context, kind, sql string, args ...any) error {
	h.pgBusy.Lock() // not while PostgreSQL restarts
	defer h.pgBusy.Unlock()
	conn, err := pgx.Connect(ctx, h.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	ids, err := pgx.CollectRows(mustQuery(conn.Query(ctx, sql+" RETURNING id", args...)), pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	done := time.Now()
	h.nem.mu.Lock()
	for _, id := range ids {
		h.nem.rows = append(h.nem.rows, chaosRow{id: id, done: done})
	}
	h.nem.mu.Unlock()
	if len(ids) > 0 {
		h.count(kind)
	}
	return nil
}

func mustQuery(rows pgx.Rows, err error) pgx.Rows {
	if err != nil {
		return errRows{err: err}
	}
	return rows
}

// errRows is a pgx.Rows that only reports err (pgx.CollectRows then
// returns it).
type errRows struct {
	pgx.Rows
	err error
}

func (e errRows) Next() bool { return false }
func (e errRows) Err() error { return e.err }
func (e errRows) Close()     {}

// excluded are the ids of the run's rows committed after cut.
func (h *harness) excluded(cut time.Time) map[int64]bool {
	h.nem.mu.Lock()
	defer h.nem.mu.Unlock()
	out := map[int64]bool{}
	for _, r := range h.nem.rows {
		if r.done.After(cut) {
			out[r.id] = true
		}
	}
	return out
}

// watchFinished polls sync_control and checks each finish once.
func (h *harness) watchFinished(ctx context.Context, state *syncstate.Store) {
	checked := h.nem.checked
	for ctx.Err() == nil {
		if latest, err := state.Latest(ctx, "events"); err == nil {
			h.nem.mu.Lock()
			h.nem.latest = latest
			h.nem.mu.Unlock()
			for _, d := range sortedDates(latest) {
				e := latest[d]
				if e.IsFinished && !checked[d].Equal(e.SyncedAt) && h.checkFinished(ctx, d, e) == nil {
					checked[d] = e.SyncedAt
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func sortedDates(m map[civil.Date]syncstate.Entry) []civil.Date {
	var out []civil.Date
	for d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// checkFinished compares date d, finished by e, with the source. An error
// means it could not read one side (PostgreSQL restarting): not checked.
func (h *harness) checkFinished(ctx context.Context, d civil.Date, e syncstate.Entry) error {
	skip := h.excluded(e.SyncedAt.Add(-lateWindow))
	src, err := h.sourceDay(ctx, d, skip)
	if err != nil {
		return err
	}
	dst, dupes, err := h.destDay(ctx, d, skip)
	if err != nil {
		return err
	}
	var missing, extra, differ []string
	for id, row := range src {
		switch got, ok := dst[id]; {
		case !ok:
			missing = append(missing, strconv.FormatInt(id, 10))
		case got != row:
			differ = append(differ, fmt.Sprintf("id %d: source {%s} BigQuery {%s}", id, row, got))
		}
	}
	for id := range dst {
		if _, ok := src[id]; !ok {
			extra = append(extra, strconv.FormatInt(id, 10))
		}
	}
	wrong := len(missing)+len(extra)+len(differ)+dupes > 0
	h.nemAdd(func(n *Nemesis) {
		n.FinishedChecks++
		if wrong {
			n.FinishedWrong++
		}
	})
	if wrong {
		h.logf("FINISHED WRONG: %s finished at %s (writer %s): source %d rows, BigQuery %d (%d ids twice); missing %s; extra %s; differing %d: %s",
			d, e.SyncedAt.Format(time.RFC3339Nano), e.Writer, len(src), len(dst), dupes, head(missing), head(extra), len(differ), head(differ))
	}
	return nil
}

func head(s []string) string {
	sort.Strings(s)
	if len(s) > 5 {
		return strings.Join(s[:5], ", ") + ", …"
	}
	return strings.Join(s, ", ")
}

// sourceDay reads day d of the source, each row as its canonical text,
// leaving out the ids in skip.
func (h *harness) sourceDay(ctx context.Context, d civil.Date, skip map[int64]bool) (map[int64]string, error) {
	cfg, err := pgx.ParseConfig(h.dsn)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	start := d.In(time.UTC)
	rows, err := conn.Query(ctx, `SELECT * FROM events WHERE created_at >= $1 AND created_at < $2`,
		pgx.QueryResultFormats{pgx.TextFormatCode}, start, start.AddDate(0, 0, 1))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
	}
	out := map[int64]string{}
	for rows.Next() {
		vals := map[string]string{}
		var id int64
		for i, raw := range rows.RawValues() {
			v, err := pgCanonical(names[i], raw)
			if err != nil {
				return nil, err
			}
			vals[names[i]] = v
			if names[i] == "id" {
				id, _ = strconv.ParseInt(string(raw), 10, 64)
			}
		}
		if !skip[id] {
			out[id] = canonicalRow(vals)
		}
	}
	return out, rows.Err()
}

// destDay reads day d of the destination like sourceDay; dupes counts
// ids seen more than once.
func (h *harness) destDay(ctx context.Context, d civil.Date, skip map[int64]bool) (map[int64]string, int, error) {
	start := d.In(time.UTC)
	it, err := bq.RunQuery(ctx, h.bq, fmt.Sprintf("SELECT * FROM %s WHERE created_at >= TIMESTAMP '%s' AND created_at < TIMESTAMP '%s'",
		bq.Ref(h.opt.BQProject, h.opt.Dataset, "events"), start.Format(time.DateOnly), start.AddDate(0, 0, 1).Format(time.DateOnly)))
	if err != nil {
		return nil, 0, err
	}
	out := map[int64]string{}
	dupes := 0
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		vals := map[string]string{}
		var id int64
		for i, f := range it.Schema {
			vals[f.Name] = bqCanonical(f.Name, row[i])
			if f.Name == "id" {
				id, _ = row[i].(int64)
			}
		}
		if skip[id] {
			continue
		}
		if _, seen := out[id]; seen {
			dupes++
		}
		out[id] = canonicalRow(vals)
	}
	return out, dupes, nil
}

const null = "NULL"

// canonicalRow joins the values of every known column (NULL where a side
// lacks the column) and of any other column either side has.
func canonicalRow(vals map[string]string) string {
	names := make([]string, 0, len(colKinds)+len(vals))
	for n := range colKinds {
		names = append(names, n)
	}
	for n := range vals {
		if _, ok := colKinds[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		v, ok := vals[n]
		if !ok {
			v = null
		}
		fmt.Fprintf(&b, "%s=%s;", n, v)
	}
	return b.String()
}

// pgCanonical is a source value (PostgreSQL's text form; nil is NULL) as
// bqCanonical writes the same value read from BigQuery.
func pgCanonical(col string, raw []byte) (string, error) {
	if raw == nil {
		return null, nil
	}
	s := string(raw)
	switch colKinds[col] {
	case "ts":
		t, err := time.Parse("2006-01-02 15:04:05.999999999-07", s)
		if err != nil {
			return "", fmt.Errorf("%s: %w", col, err)
		}
		return strconv.FormatInt(t.UnixMicro(), 10), nil
	case "float":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return "", fmt.Errorf("%s: %w", col, err)
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case "bool":
		return strconv.FormatBool(s == "t"), nil
	case "num":
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return "", fmt.Errorf("%s: not a number: %q", col, s)
		}
		return r.RatString(), nil
	case "json":
		return canonicalJSON(raw), nil
	}
	return s, nil
}

// bqCanonical is a BigQuery value in the form pgCanonical gives.
func bqCanonical(col string, v bigquery.Value) string {
	switch x := v.(type) {
	case nil:
		return null
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case *big.Rat:
		return x.RatString()
	case time.Time:
		return strconv.FormatInt(x.UnixMicro(), 10)
	case civil.Date:
		return x.String()
	case string:
		if colKinds[col] == "json" {
			return canonicalJSON([]byte(x))
		}
		return x
	}
	b, _ := json.Marshal(v)
	if colKinds[col] == "json" {
		return canonicalJSON(b)
	}
	return string(b)
}

// canonicalJSON re-encodes a JSON value with sorted keys and no spaces.
func canonicalJSON(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "invalid JSON: " + string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// staleLogs counts the loaders' logs of stale publish jobs: fenced (kept
// from landing) and ran (ended by themselves before the fencing publish).
func (h *harness) staleLogs() (fenced, ran int) {
	files, _ := filepath.Glob(filepath.Join(h.opt.WorkDir, "loader-*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fenced += bytes.Count(b, []byte(`"stale publish job fenced"`))
		ran += bytes.Count(b, []byte(`"stale publish job ran"`))
	}
	return fenced, ran
}
