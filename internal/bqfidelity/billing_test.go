package bqfidelity

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

// publishMerge is pgbq's publish of days from staging, joined as join
// says ("FALSE" or a NULL key).
func publishMerge(f *fixture, join string, days ...string) string {
	var src, repl []string
	for _, d := range days {
		next := day(d).AddDate(0, 0, 1).Format(time.DateOnly)
		src = append(src, fmt.Sprintf("SELECT id, ts, CAST(NULL AS INT64) AS nm FROM %s WHERE ts >= TIMESTAMP '%s 00:00:00+00' AND ts < TIMESTAMP '%s 00:00:00+00'", f.ref("staging"), d, next))
		repl = append(repl, fmt.Sprintf("(T.ts >= TIMESTAMP '%s 00:00:00+00' AND T.ts < TIMESTAMP '%s 00:00:00+00')", d, next))
	}
	return fmt.Sprintf("MERGE %s AS T USING (\n%s\n) AS S ON %s\nWHEN NOT MATCHED BY SOURCE AND (%s) THEN DELETE\nWHEN NOT MATCHED THEN INSERT (id, ts) VALUES (S.id, S.ts)",
		f.ref("dest"), strings.Join(src, "\nUNION ALL\n"), join, strings.Join(repl, " OR "))
}

func TestMergePruningFollowsTheDocs(t *testing.T) {
	t.Parallel()
	stmts := func(sql string) []stmt { s, _ := scanSQL(sql, "p", ""); return s }
	f := &fixture{project: "p", dataset: "d"}
	for _, tc := range []struct {
		join   string
		pruned bool
	}{
		{"FALSE", true},
		{"T.id = S.nm", false}, // a NULL key: a full outer join
		{"T.id = S.id", false},
	} {
		sql := publishMerge(f, tc.join, "2024-01-02", "2024-01-04")
		if len(stmts(sql)) != 1 {
			t.Fatalf("%s: statements %v", tc.join, stmts(sql))
		}
		ts := scans(sql, "p", "")
		var names []string
		for _, s := range ts {
			names = append(names, s.ref.Table+"/"+s.alias)
		}
		if !slices.Equal(names, []string{"dest/T", "staging/"}) {
			t.Fatalf("%s: tables %v", tc.join, names)
		}
		var days []string
		if onFalse.MatchString(stripSQL(sql)) {
			days = prunedDays(bounds(mergeFilter(sql)), "ts", "T", false)
		}
		if got := days != nil; got != tc.pruned {
			t.Fatalf("ON %s: pruned %v (days %v), want %v", tc.join, got, days, tc.pruned)
		}
		if tc.pruned && !slices.Equal(days, []string{"2024-01-02", "2024-01-04"}) {
			t.Fatalf("ON FALSE prunes to %v, want the two replaced days", days)
		}
		// Staging's own filter is unqualified and prunes it either way.
		if d := prunedDays(bounds(sql), "ts", "", true); !slices.Equal(d, []string{"2024-01-02", "2024-01-04"}) {
			t.Fatalf("staging pruned to %v", d)
		}
	}
}

func TestPruningIsNeverKinderThanTheFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sql  string
		want []string // nil: every partition
	}{
		{"SELECT 1 FROM t WHERE ts >= TIMESTAMP '2024-01-01' AND ts < TIMESTAMP '2024-01-03'", []string{"2024-01-01", "2024-01-02"}},
		{"SELECT 1 FROM t WHERE ts >= TIMESTAMP('2024-01-01 00:00:00+00') AND ts < TIMESTAMP('2024-01-01 12:00:00+00')", []string{"2024-01-01"}},
		{"SELECT 1 FROM t WHERE ts >= TIMESTAMP '2024-01-01 00:00:00+05'", nil}, // another zone
		{"SELECT 1 FROM t WHERE ts >= TIMESTAMP '2024-01-01'", nil},             // no upper bound
		{"SELECT 1 FROM t WHERE id > 3", nil},
		{"SELECT 1 FROM t WHERE d = DATE '2024-01-05'", nil}, // another column
	} {
		if got := prunedDays(bounds(tc.sql), "ts", "", true); !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("%s: days %v, want %v", tc.sql, got, tc.want)
		}
	}
}

// eventBytes is the data size of n rows of eventSchema (id INT64, ts
// TIMESTAMP, both set): 16 bytes a row.
func eventBytes(n int) int64 { return int64(16 * n) }

// fillDays puts perDay rows on each of days into table id (straight on the
// emulator).
func (f *fixture) fillDays(t *testing.T, id string, firstID int, perDay int, days ...string) {
	t.Helper()
	var vals []string
	n := firstID
	for _, d := range days {
		for i := range perDay {
			vals = append(vals, fmt.Sprintf("(%d, TIMESTAMP '%s %02d:00:00+00')", n, d, i%24))
			n++
		}
	}
	f.rawExec(t, "INSERT INTO "+f.ref(id)+" (id, ts) VALUES "+strings.Join(vals, ", "))
}

// queryBytes runs sql through the proxy and returns the job's
// statistics.totalBytesProcessed and totalBytesBilled.
func (f *fixture) queryBytes(t *testing.T, sql string) (processed, billed int64) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	j, err := f.c.Query(sql).Run(ctx)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	st, err := waitJob(ctx, j)
	if err != nil || st.Err() != nil {
		t.Fatalf("%s: %v %v", sql, err, st.Err())
	}
	qs, ok := st.Statistics.Details.(*bigquery.QueryStatistics)
	if !ok {
		t.Fatalf("%s: no query statistics (%T)", sql, st.Statistics.Details)
	}
	if st.Statistics.TotalBytesProcessed != qs.TotalBytesProcessed {
		t.Fatalf("statistics.totalBytesProcessed %d, statistics.query.totalBytesProcessed %d", st.Statistics.TotalBytesProcessed, qs.TotalBytesProcessed)
	}
	return qs.TotalBytesProcessed, qs.TotalBytesBilled
}

func TestQueryJobsReportBytesProcessedByTheDocumentedRules(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	days := []string{"2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"}
	f.fillDays(t, "dest", 1, 10, days...)       // 10 rows a day
	f.fillDays(t, "staging", 1000, 10, days[1]) // 10 rows staged for the 2nd: a publish keeps the day's size
	day2 := fmt.Sprintf("ts >= TIMESTAMP '%s' AND ts < TIMESTAMP '%s'", days[1], days[2])
	for _, tc := range []struct {
		name string
		sql  string
		want int64
	}{
		{"a filter on the partitioning column prunes", "SELECT COUNT(*) FROM " + f.ref("dest") + " WHERE " + day2, eventBytes(10) / 2}, // ts only
		{"referenced columns of the pruned partition", "SELECT id, ts FROM " + f.ref("dest") + " WHERE " + day2, eventBytes(10)},
		{"no filter: every partition", "SELECT id FROM " + f.ref("dest"), eventBytes(50) / 2},
		{"INSERT … SELECT is what it reads", "INSERT INTO " + f.ref("dest") + " (id, ts) SELECT id + 5000, ts FROM " + f.ref("staging") + " WHERE FALSE", eventBytes(10)},
		{"DELETE is the changed partitions, every column", "DELETE FROM " + f.ref("dest") + " WHERE " + day2 + " AND id < 0", eventBytes(10)},
		{"UPDATE without a partition filter is the whole table", "UPDATE " + f.ref("dest") + " SET id = id WHERE id < 0", eventBytes(50)},
		{"MERGE ON FALSE: staging plus the replaced partitions", publishMerge(f, "FALSE", days[1]), eventBytes(10) + eventBytes(10)},
		{"MERGE on a NULL key: a full outer join, unpruned", publishMerge(f, "T.id = S.nm", days[1]), eventBytes(10) + eventBytes(50)},
	} {
		got, billed := f.queryBytes(t, tc.sql)
		if got != tc.want {
			t.Errorf("%s: totalBytesProcessed %d, want %d", tc.name, got, tc.want)
		}
		tables := int64(1) // the minimum counts every table named, read or written
		if strings.Contains(tc.sql, "staging") {
			tables = 2
		}
		if billed < tables*10*mib || billed%mib != 0 {
			t.Errorf("%s: totalBytesBilled %d, want at least 10 MB per table referenced, in whole MB", tc.name, billed)
		}
	}
	s := f.p.Stats()
	if s.BytesProcessed["MERGE"] != 3*eventBytes(10)+eventBytes(50) {
		t.Errorf("Stats.BytesProcessed[MERGE] = %d", s.BytesProcessed["MERGE"])
	}
}

func TestDataSizeFollowsTheTypeTable(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	// Made by tables.insert: the emulator's DDL records JSON as STRING in
	// the table's schema. (It cannot make a BIGNUMERIC column.)
	schema := bigquery.Schema{
		{Name: "i", Type: bigquery.IntegerFieldType}, {Name: "s", Type: bigquery.StringFieldType},
		{Name: "b", Type: bigquery.BytesFieldType}, {Name: "j", Type: bigquery.JSONFieldType},
		{Name: "a", Type: bigquery.StringFieldType, Repeated: true}, {Name: "ai", Type: bigquery.IntegerFieldType, Repeated: true},
		{Name: "n", Type: bigquery.NumericFieldType},
		{Name: "ok", Type: bigquery.BooleanFieldType}, {Name: "d", Type: bigquery.DateFieldType},
	}
	if err := f.raw.Dataset(f.dataset).Table("typed").Create(ctxT(t, 30*time.Second), &bigquery.TableMetadata{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	f.rawExec(t, "INSERT INTO "+f.ref("typed")+` VALUES
		(1, 'héllo', b'abc', JSON '{"a":1}', ['x', 'yy'], [1, 2, 3], NUMERIC '1.5', TRUE, DATE '2024-01-01'),
		(NULL, NULL, NULL, NULL, [], [], NULL, NULL, NULL)`)
	// 8 + (2+6) + (2+3) + 7 + (2+1 + 2+2) + 3*8 + 16 + 1 + 8; NULLs are 0.
	want := int64(8 + 8 + 5 + 7 + 7 + 24 + 16 + 1 + 8)
	if got, _ := f.queryBytes(t, "SELECT * FROM "+f.ref("typed")); got != want {
		t.Fatalf("totalBytesProcessed %d, want %d", got, want)
	}
}
