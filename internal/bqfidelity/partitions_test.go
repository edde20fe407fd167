package bqfidelity

import (
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

func TestPartitionsPerJobAndPerTable(t *testing.T) {
	t.Parallel()
	f := start(t, Options{PartitionsPerJob: 2, PartitionsPerTable: 3}) // 4,000 and 10,000 by default
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	f.fillDays(t, "dest", 1, 2, "2024-01-01", "2024-01-02")
	f.fillDays(t, "staging", 100, 2, "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")
	load := func(table, day string) (string, string) {
		t.Helper()
		src := bigquery.NewReaderSource(strings.NewReader(`{"id":9,"ts":"` + day + ` 05:00:00"}` + "\n"))
		src.SourceFormat = bigquery.JSON
		l := f.c.Dataset(f.dataset).Table(table).LoaderFrom(src)
		l.WriteDisposition = bigquery.WriteAppend
		ctx := ctxT(t, time.Minute)
		j, err := l.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := waitJob(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		return jobErr(t, st)
	}
	refusedAs := func(what, reason, msg, want string) {
		t.Helper()
		if reason != "invalid" || !strings.Contains(msg, want) {
			t.Fatalf("%s: %q %q, want invalid %q", what, reason, msg, want)
		}
	}
	reasons, msgs := runAll(t, f, []string{publishMerge(f, "FALSE", "2024-01-01", "2024-01-02", "2024-01-03")})
	refusedAs("a MERGE of 3 days, 2 allowed per job", reasons[0], msgs[0], "Too many partitions produced by query, allowed 2")
	if reasons, msgs = runAll(t, f, []string{publishMerge(f, "FALSE", "2024-01-02", "2024-01-03")}); reasons[0] != "" {
		t.Fatalf("a MERGE of 2 days making the table's third: %s %s", reasons[0], msgs[0])
	}
	r, msg := load("dest$20240104", "2024-01-04")
	refusedAs("a load into a fourth partition", r, msg, "Too many partitions in table")
	if r, msg := load("dest$20240101", "2024-01-01"); r != "" {
		t.Fatalf("a load into an existing partition: %s %s", r, msg)
	}
	r, msg = load("dest", "2024-01-01") // no decorator: the table is full
	refusedAs("a load without a decorator into a full table", r, msg, "Too many partitions in table")
	reasons, msgs = runAll(t, f, []string{"DELETE FROM " + f.ref("dest") + " WHERE id < 0"})
	refusedAs("a DELETE over all 3 partitions", reasons[0], msgs[0], "Too many partitions produced by query, allowed 2")
	if n := f.count(t, "SELECT COUNT(DISTINCT DATE(ts)) FROM "+f.ref("dest")); n != 3 {
		t.Fatalf("dest holds %d partitions, want 3", n)
	}
}
