package bqfidelity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

// runAll starts every SQL at once through the proxy and waits for all of
// them; it returns each job's error reason and message ("" when it worked).
func runAll(t *testing.T, f *fixture, sqls []string) (reasons, msgs []string) {
	t.Helper()
	reasons, msgs = make([]string, len(sqls)), make([]string, len(sqls))
	var wg sync.WaitGroup
	for i, sql := range sqls {
		wg.Go(func() {
			ctx := ctxT(t, 2*time.Minute)
			j, err := f.c.Query(sql).Run(ctx)
			if err != nil {
				reasons[i], msgs[i] = "insert:"+apiReason(err), err.Error()
				return
			}
			st, err := waitJob(ctx, j)
			if err != nil {
				reasons[i], msgs[i] = "get", err.Error()
				return
			}
			reasons[i], msgs[i] = jobErr(t, st)
		})
	}
	wg.Wait()
	return reasons, msgs
}

// publishTxn is the old publish of day d: staging's rows replace the day
// of dest in one DELETE+INSERT transaction.
func publishTxn(f *fixture, d string) string {
	const dest, staging = "dest", "staging"
	next := day(d).AddDate(0, 0, 1).Format("2006-01-02")
	cond := fmt.Sprintf("ts >= TIMESTAMP('%s') AND ts < TIMESTAMP('%s')", d, next)
	return fmt.Sprintf("BEGIN TRANSACTION;\nDELETE FROM %s WHERE %s;\nINSERT INTO %s (id, ts) SELECT id, ts FROM %s WHERE %s;\nCOMMIT TRANSACTION;",
		f.ref(dest), cond, f.ref(dest), f.ref(staging), cond)
}

func TestOverlappingTransactionsOnOneTableConflictEvenOnDifferentPartitions(t *testing.T) {
	f := start(t, Options{JobLatency: 4 * time.Second})
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	f.rawExec(t, "INSERT INTO "+f.ref("staging")+" (id, ts) VALUES (1, TIMESTAMP('2024-01-01 05:00:00')), (2, TIMESTAMP('2024-01-02 05:00:00'))")
	reasons, msgs := runAll(t, f, []string{
		publishTxn(f, "2024-01-01"),
		publishTxn(f, "2024-01-02"),
	})
	aborted := 0
	for i, r := range reasons {
		switch r {
		case "":
		case "invalidQuery":
			want := "Transaction is aborted due to concurrent update against table " + f.project + ":" + f.dataset + ".dest"
			if !strings.Contains(msgs[i], want) {
				t.Fatalf("message %q, want it to contain %q", msgs[i], want)
			}
			aborted++
		default:
			t.Fatalf("transaction %d: %s %s", i, r, msgs[i])
		}
	}
	if aborted != 1 || f.p.Stats().TransactionConflicts != 1 {
		t.Fatalf("aborted %d, TransactionConflicts %d; want 1 and 1", aborted, f.p.Stats().TransactionConflicts)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")); n != 1 {
		t.Fatalf("dest rows = %d, want the one committed transaction's row", n)
	}
}

func TestDMLOutsideATransactionWaitsForTheRunningTransaction(t *testing.T) {
	f := start(t, Options{JobLatency: 4 * time.Second})
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	f.rawExec(t, "INSERT INTO "+f.ref("staging")+" (id, ts) VALUES (1, TIMESTAMP('2024-01-01 05:00:00'))")
	ctx := ctxT(t, 2*time.Minute)
	tx, err := f.c.Query(publishTxn(f, "2024-01-01")).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The UPDATE is submitted just after the transaction, so it reaches the
	// table while the transaction runs (each is PENDING 2 s, RUNNING 2 s).
	time.Sleep(300 * time.Millisecond)
	reasons, msgs := runAll(t, f, []string{"UPDATE " + f.ref("dest") + " SET id = id + 100 WHERE TRUE"})
	if reasons[0] != "" {
		t.Fatalf("the DML failed: %s %s; it should have waited", reasons[0], msgs[0])
	}
	if st, err := waitJob(ctx, tx); err != nil || st.Err() != nil {
		t.Fatalf("transaction: %v %v", err, st.Err())
	}
	s := f.p.Stats()
	if s.DMLQueued < 1 || s.TransactionConflicts != 0 {
		t.Fatalf("DMLQueued %d TransactionConflicts %d, want >= 1 and 0", s.DMLQueued, s.TransactionConflicts)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")+" WHERE id = 101"); n != 1 {
		t.Fatalf("the UPDATE did not run after the transaction (rows with id 101: %d)", n)
	}
}

// Each UPDATE changes a day of its own: statements on one partition would
// also conflict (conflicts.go), which is not what this test is about.
func TestMutatingDMLRunsTwoAtATimeWithTwentyQueuedThenFails(t *testing.T) {
	f := start(t, Options{JobLatency: 2 * time.Second})
	f.table(t, "ev", true)
	sqls := make([]string, 23)
	var days []string
	for i := range sqls {
		d := day("2024-01-01").AddDate(0, 0, i)
		days = append(days, d.Format(time.DateOnly))
		sqls[i] = fmt.Sprintf("UPDATE %s SET id = id + 1 WHERE ts >= TIMESTAMP '%s 00:00:00+00' AND ts < TIMESTAMP '%s 00:00:00+00'",
			f.ref("ev"), d.Format(time.DateOnly), d.AddDate(0, 0, 1).Format(time.DateOnly))
	}
	f.fillDays(t, "ev", 0, 1, days...)
	f.rawExec(t, "UPDATE "+f.ref("ev")+" SET id = 0 WHERE TRUE")
	reasons, msgs := runAll(t, f, sqls)
	failed := 0
	for i, r := range reasons {
		if r == "" {
			continue
		}
		if r != "resourcesExceeded" || !strings.Contains(msgs[i], "Too many DML statements outstanding against table "+f.project+":"+f.dataset+".ev") {
			t.Fatalf("statement %d: %s %s", i, r, msgs[i])
		}
		failed++
	}
	s := f.p.Stats()
	if failed != 1 || s.DMLQueueFull != 1 || s.DMLQueued != 20 {
		t.Fatalf("failed %d DMLQueueFull %d DMLQueued %d, want 1, 1, 20", failed, s.DMLQueueFull, s.DMLQueued)
	}
	if n := f.count(t, "SELECT SUM(id) FROM "+f.ref("ev")); n != 22 {
		t.Fatalf("days updated = %d, want 22", n)
	}
}

func TestInsertDMLIsLimitedAfterTheDailyFreeOnes(t *testing.T) {
	f := start(t, Options{JobLatency: time.Second, InsertDMLFreePerDay: 2, InsertDMLRunning: 1, InsertDMLQueued: 2})
	f.table(t, "ev", false)
	ins := "INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))"
	if r, m := runAll(t, f, []string{ins, ins}); r[0] != "" || r[1] != "" {
		t.Fatalf("free INSERTs failed: %v %v", r, m)
	}
	reasons, _ := runAll(t, f, []string{ins, ins, ins, ins}) // 1 runs, 2 wait, 1 is refused
	failed := 0
	for _, r := range reasons {
		if r == "resourcesExceeded" {
			failed++
		} else if r != "" {
			t.Fatalf("unexpected failure %q", r)
		}
	}
	if failed != 1 {
		t.Fatalf("refused INSERTs = %d, want 1 (%v)", failed, reasons)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 5 {
		t.Fatalf("rows = %d, want 5", n)
	}
}

func TestDMLRatePerTableIsLimited(t *testing.T) {
	// The documented 25 per 10 s is the default (TestDefaultsAreTheDocumentedValues);
	// 3 keeps the test well inside one window on a loaded machine.
	f := start(t, Options{DMLPer10s: 3})
	f.table(t, "ev", false)
	ins := "INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))"
	for i := range 4 {
		r, m := runAll(t, f, []string{ins})
		want := ""
		if i == 3 {
			want = "rateLimitExceeded"
		}
		if r[0] != want {
			t.Fatalf("statement %d: %q %s, want %q", i+1, r[0], m[0], want)
		}
	}
	if got := f.p.Stats().RateLimited[LimitDMLRate]; got != 1 {
		t.Fatalf("RateLimited[%s] = %d, want 1", LimitDMLRate, got)
	}
}

func TestDefaultsAreTheDocumentedValues(t *testing.T) {
	t.Parallel()
	got := Options{}.withDefaults()
	want := Options{TableMetadataUpdatesPer10s: 5, DMLPer10s: 25, MutatingDMLRunning: 2, MutatingDMLQueued: 20,
		InsertDMLFreePerDay: 1500, InsertDMLRunning: 10, InsertDMLQueued: 100, PartitionModsPer10s: 50,
		PartitionModsPerDay: 30000, LoadJobsPerTablePerDay: 1500, LoadJobsPerProjectPerDay: 100000, CopyJobsPerTablePerDay: 1000, TablesInsertPerSecond: 10, PartitionsPerTable: 10000, PartitionsPerJob: 4000,
		InsertIDWindow: time.Minute, StreamingBufferWindow: 30 * time.Minute}
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		t.Fatalf("defaults %s\nwant %s", g, w)
	}
}

// patch sends tables.patch of table ev through the proxy without the client's retries.
func patch(t *testing.T, f *fixture, desc string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"description": desc})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPatch, fmt.Sprintf("%sprojects/%s/datasets/%s/tables/%s", f.p.Endpoint(), f.project, f.dataset, "ev"), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	reason := ""
	if e, ok := body["error"].(map[string]any); ok {
		errs, _ := e["errors"].([]any)
		if len(errs) > 0 {
			reason, _ = errs[0].(map[string]any)["reason"].(string)
		}
	}
	return resp.StatusCode, reason
}

func TestTableMetadataUpdatesArePer10sAndAMultiColumnAlterIsOne(t *testing.T) {
	t.Parallel()
	f := start(t, Options{TableMetadataUpdatesPer10s: 3}) // 5 by default; 3 keeps it inside one window
	f.table(t, "ev", false)
	ctx := ctxT(t, time.Minute)
	j, err := f.c.Query("ALTER TABLE " + f.ref("ev") + " ADD COLUMN a STRING, ADD COLUMN b INT64").Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := waitJob(ctx, j); err != nil || st.Err() != nil {
		t.Fatalf("ALTER: %v %v", err, st.Err())
	}
	// (The emulator's tables.get does not show ALTERed columns; its data does.)
	if n := f.count(t, "SELECT COUNT(*) FROM (SELECT a, b FROM "+f.ref("ev")+")"); n != 0 {
		t.Fatalf("rows = %d", n)
	}
	for i := range 2 { // the ALTER was one update: two more fit in the window
		if code, reason := patch(t, f, fmt.Sprint(i)); code != 200 {
			t.Fatalf("patch %d: %d %s", i+1, code, reason)
		}
	}
	if code, reason := patch(t, f, "fourth"); code != 403 || reason != "rateLimitExceeded" {
		t.Fatalf("fourth metadata update: %d %s, want 403 rateLimitExceeded", code, reason)
	}
}

func TestJobsWritingATableCountAsMetadataUpdates(t *testing.T) {
	f := start(t, Options{TableMetadataUpdatesPer10s: 2})
	f.table(t, "ev", false)
	for i := range 3 {
		src := bigquery.NewReaderSource(strings.NewReader(fmt.Sprintf(`{"id":%d,"ts":"2024-01-02 00:00:00"}`+"\n", i)))
		src.SourceFormat = bigquery.JSON
		ctx := ctxT(t, time.Minute)
		j, err := f.c.Dataset(f.dataset).Table("ev").LoaderFrom(src).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := waitJob(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		reason, msg := jobErr(t, st)
		if i < 2 && reason != "" || i == 2 && (reason != "rateLimitExceeded" || !strings.Contains(msg, "too many table update operations for this table")) {
			t.Fatalf("load %d: %q %q", i+1, reason, msg)
		}
	}
}

func TestTablesInsertIsTenPerSecondPerUser(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	codes := make([]int, 11)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			b, _ := json.Marshal(map[string]any{
				"tableReference": map[string]any{"projectId": f.project, "datasetId": f.dataset, "tableId": fmt.Sprintf("t%d", i)},
				"schema":         map[string]any{"fields": []any{map[string]any{"name": "id", "type": "INT64"}}},
			})
			resp, err := send(t, http.MethodPost, fmt.Sprintf("%sprojects/%s/datasets/%s/tables", f.p.Endpoint(), f.project, f.dataset), bytes.NewReader(b))
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	refused := 0
	for _, c := range codes {
		if c == 403 {
			refused++
		} else if c != 200 {
			t.Fatalf("tables.insert answered %d", c)
		}
	}
	if refused != 1 || f.p.Stats().RateLimited[LimitTablesInsert] != 1 {
		t.Fatalf("refused %d of 11 at once, want 1", refused)
	}
}

func TestPartitionModificationsAndDailyLoadQuota(t *testing.T) {
	f := start(t, Options{PartitionModsPer10s: 2, LoadJobsPerTablePerDay: 4, TableMetadataUpdatesPer10s: 100})
	f.table(t, "parted", true)
	f.table(t, "plain", false)
	load := func(table string) string {
		src := bigquery.NewReaderSource(strings.NewReader(`{"id":1,"ts":"2024-01-02 00:00:00"}` + "\n"))
		src.SourceFormat = bigquery.JSON
		ctx := ctxT(t, time.Minute)
		j, err := f.c.Dataset(f.dataset).Table(table).LoaderFrom(src).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := waitJob(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := jobErr(t, st)
		return r
	}
	got := []string{load("parted"), load("parted"), load("parted")}
	if got[0] != "" || got[1] != "" || got[2] != "rateLimitExceeded" {
		t.Fatalf("three loads into a partitioned table with 2 modifications per 10 s: %q", got)
	}
	// Failed load jobs count toward the daily per-table quota.
	f.p.Inject(Fault{Kind: "load", Table: "plain", Count: 2, JobErrorReason: "backendError"})
	got = []string{load("plain"), load("plain"), load("plain"), load("plain"), load("plain")}
	if got[0] != "backendError" || got[1] != "backendError" || got[2] != "" || got[3] != "" || got[4] != "quotaExceeded" {
		t.Fatalf("loads against a daily quota of 4: %q", got)
	}
}

// A tables.insert answered "already exists" changed no metadata: it does not
// use up the table's metadata updates (every instance may try to create).
func TestTablesInsertOfAnExistingTableIsNoMetadataUpdate(t *testing.T) {
	t.Parallel()
	f := start(t, Options{TableMetadataUpdatesPer10s: 1})
	f.table(t, "ev", false)
	b, _ := json.Marshal(map[string]any{
		"tableReference": map[string]any{"projectId": f.project, "datasetId": f.dataset, "tableId": "ev"},
		"schema":         map[string]any{"fields": []any{map[string]any{"name": "id", "type": "INT64"}}},
	})
	for range 3 {
		resp, err := send(t, http.MethodPost, fmt.Sprintf("%sprojects/%s/datasets/%s/tables", f.p.Endpoint(), f.project, f.dataset), bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 409 {
			t.Fatalf("tables.insert of an existing table: %d, want 409", resp.StatusCode)
		}
	}
	if code, reason := patch(t, f, "first real update"); code != 200 {
		t.Fatalf("patch after three refused creations: %d %s", code, reason)
	}
}

// A DML statement modifies every partition it writes: a MERGE replacing
// three days counts three of the table's partition modifications, so with
// 4 per 10 s a second such MERGE is refused, and a one-day DELETE still
// fits.
func TestDMLCountsEveryDayItReplaces(t *testing.T) {
	f := start(t, Options{PartitionModsPer10s: 4, TableMetadataUpdatesPer10s: 100})
	f.table(t, "parted", true)
	f.table(t, "src", false)
	days := func(ds ...string) string {
		var conds []string
		for _, d := range ds {
			next := day(d).AddDate(0, 0, 1).Format("2006-01-02")
			conds = append(conds, fmt.Sprintf("(T.ts >= TIMESTAMP '%s 00:00:00+00' AND T.ts < TIMESTAMP '%s 00:00:00+00')", d, next))
		}
		return fmt.Sprintf("MERGE %s AS T USING (SELECT id, ts FROM %s) AS S ON FALSE WHEN NOT MATCHED BY SOURCE AND (%s) THEN DELETE WHEN NOT MATCHED THEN INSERT (id, ts) VALUES (S.id, S.ts)",
			f.ref("parted"), f.ref("src"), strings.Join(conds, " OR "))
	}
	if got, _ := runAll(t, f, []string{days("2024-01-01", "2024-01-02", "2024-01-03")}); got[0] != "" {
		t.Fatalf("a MERGE of 3 days with 4 modifications per 10 s: %q", got)
	}
	if got, _ := runAll(t, f, []string{days("2024-01-04", "2024-01-05")}); got[0] != "rateLimitExceeded" {
		t.Fatalf("a second MERGE of 2 days within 10 s: %q, want rateLimitExceeded", got)
	}
	del := fmt.Sprintf("DELETE FROM %s WHERE ts >= TIMESTAMP '2024-01-06 00:00:00+00' AND ts < TIMESTAMP '2024-01-07 00:00:00+00'", f.ref("parted"))
	if got, _ := runAll(t, f, []string{del}); got[0] != "" {
		t.Fatalf("a one-day DELETE as the fourth modification: %q", got)
	}
	if n := f.p.Stats().DMLRun["MERGE"]; n != 1 {
		t.Fatalf("%d MERGE statements took effect, want 1", n)
	}
}
