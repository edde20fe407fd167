package bqfidelity

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

// seed puts rows (id, "YYYY-MM-DD HH:MM:SS") into a table, straight on the emulator.
func (f *fixture) seed(t *testing.T, table string, rows map[int]string) {
	t.Helper()
	var vals []string
	for id, ts := range rows {
		vals = append(vals, fmt.Sprintf("(%d, TIMESTAMP('%s'))", id, ts))
	}
	f.rawExec(t, "INSERT INTO "+f.ref(table)+" (id, ts) VALUES "+strings.Join(vals, ", "))
}

// dayCount counts the rows of table dest on day d.
func (f *fixture) dayCount(t *testing.T, d string) int64 {
	t.Helper()
	next := day(d).AddDate(0, 0, 1).Format("2006-01-02")
	return f.count(t, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE ts >= TIMESTAMP('%s') AND ts < TIMESTAMP('%s')", f.ref("dest"), d, next))
}

func (f *fixture) runJob(t *testing.T, run func() (*bigquery.Job, error)) (string, string) {
	t.Helper()
	j, err := run()
	if err != nil {
		t.Fatalf("jobs.insert: %v", err)
	}
	st, err := waitJob(ctxT(t, time.Minute), j)
	if err != nil {
		t.Fatal(err)
	}
	return jobErr(t, st)
}

func (f *fixture) copyJob(t *testing.T, src, dst string, wd bigquery.TableWriteDisposition) (string, string) {
	t.Helper()
	ds := f.c.Dataset(f.dataset)
	return f.runJob(t, func() (*bigquery.Job, error) {
		c := ds.Table(dst).CopierFrom(ds.Table(src))
		c.WriteDisposition = wd
		return c.Run(ctxT(t, time.Minute))
	})
}

func TestCopyWithDecoratorsReplacesExactlyThatDay(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 100 * time.Millisecond})
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	f.seed(t, "dest", map[int]string{1: "2024-01-01 10:00:00", 2: "2024-01-02 10:00:00", 3: "2024-01-02 11:00:00", 4: "2024-01-03 10:00:00"})
	f.seed(t, "staging", map[int]string{10: "2024-01-02 01:00:00", 11: "2024-01-02 23:59:59", 12: "2024-01-03 05:00:00"})
	for range 2 { // re-publishing gives the same result
		if r, m := f.copyJob(t, "staging$20240102", "dest$20240102", bigquery.WriteTruncate); r != "" {
			t.Fatalf("copy: %s %s", r, m)
		}
		if got := [3]int64{f.dayCount(t, "2024-01-01"), f.dayCount(t, "2024-01-02"), f.dayCount(t, "2024-01-03")}; got != [3]int64{1, 2, 1} {
			t.Fatalf("rows per day after WRITE_TRUNCATE of 2024-01-02: %v, want [1 2 1]", got)
		}
		if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")+" WHERE id IN (10, 11)"); n != 2 {
			t.Fatalf("staging's rows in dest: %d, want 2", n)
		}
	}
	if r, m := f.copyJob(t, "staging$20240102", "dest$20240102", bigquery.WriteAppend); r != "" {
		t.Fatalf("copy append: %s %s", r, m)
	}
	if n := f.dayCount(t, "2024-01-02"); n != 4 {
		t.Fatalf("rows of 2024-01-02 after WRITE_APPEND: %d, want 4", n)
	}
	if s := f.p.Stats(); s.DecoratorJobs != 3 || s.JobsRun["copy"] != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDecoratorRejectsRowsOutsideTheDayAndNonPartitionedTables(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "dest", true)
	f.table(t, "src", true)
	f.table(t, "plain", false)
	f.seed(t, "dest", map[int]string{1: "2024-01-02 10:00:00"})
	f.seed(t, "src", map[int]string{10: "2024-01-02 01:00:00", 11: "2024-01-05 01:00:00"})
	r, m := f.copyJob(t, "src", "dest$20240102", bigquery.WriteTruncate)
	if r != "invalid" || !strings.Contains(m, "Some rows belong to different partitions rather than destination partition 20240102") {
		t.Fatalf("rows outside the day: %q %q", r, m)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")+" WHERE id = 1"); n != 1 {
		t.Fatalf("a failed job changed the destination")
	}
	r, m = f.copyJob(t, "src", "plain$20240102", bigquery.WriteTruncate)
	if r != "invalid" || !strings.Contains(m, "Cannot read partition information from a table that is not partitioned") {
		t.Fatalf("decorator on a non-partitioned table: %q %q", r, m)
	}
}

func TestCopyWithoutDecoratorsStillWorks(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "src", true)
	f.seed(t, "src", map[int]string{1: "2024-01-02 10:00:00", 2: "2024-01-03 10:00:00"})
	if r, m := f.copyJob(t, "src", "copy", bigquery.WriteTruncate); r != "" {
		t.Fatalf("copy: %s %s", r, m)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("copy")); n != 2 {
		t.Fatalf("rows = %d, want 2", n)
	}
}

func TestLoadIntoADecoratorReplacesTheDay(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "dest", true)
	f.seed(t, "dest", map[int]string{1: "2024-01-02 10:00:00", 2: "2024-01-03 10:00:00"})
	r, m := f.runJob(t, func() (*bigquery.Job, error) {
		src := bigquery.NewReaderSource(strings.NewReader(`{"id":5,"ts":"2024-01-02 03:00:00"}` + "\n" + `{"id":6,"ts":"2024-01-02 04:00:00"}` + "\n"))
		src.SourceFormat = bigquery.JSON
		l := f.c.Dataset(f.dataset).Table("dest$20240102").LoaderFrom(src)
		l.WriteDisposition = bigquery.WriteTruncate
		return l.Run(ctxT(t, time.Minute))
	})
	if r != "" {
		t.Fatalf("load: %s %s", r, m)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")+" WHERE id IN (5, 6)"); n != 2 || f.dayCount(t, "2024-01-02") != 2 || f.dayCount(t, "2024-01-03") != 1 {
		t.Fatalf("after load into dest$20240102 the days are wrong")
	}
}

func TestQueryDestinationDecoratorWritesTheDeduplicatedDay(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	f.seed(t, "dest", map[int]string{1: "2024-01-02 10:00:00", 2: "2024-01-03 10:00:00"})
	f.seed(t, "staging", map[int]string{7: "2024-01-02 05:00:00", 8: "2024-01-02 06:00:00"})
	f.seed(t, "staging", map[int]string{7: "2024-01-02 05:00:00"}) // a duplicate id
	r, m := f.runJob(t, func() (*bigquery.Job, error) {
		q := f.c.Query("SELECT id, ts FROM " + f.ref("staging") + " WHERE TRUE QUALIFY ROW_NUMBER() OVER (PARTITION BY id ORDER BY ts) = 1")
		q.Dst = f.c.Dataset(f.dataset).Table("dest$20240102")
		q.WriteDisposition = bigquery.WriteTruncate
		return q.Run(ctxT(t, time.Minute))
	})
	if r != "" {
		t.Fatalf("query: %s %s", r, m)
	}
	if f.dayCount(t, "2024-01-02") != 2 || f.dayCount(t, "2024-01-03") != 1 || f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")+" WHERE id = 1") != 0 {
		t.Fatalf("the day was not replaced by the de-duplicated rows")
	}
}

func TestDecoratorOnADatePartitionedTable(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	md := &bigquery.TableMetadata{
		Schema:           bigquery.Schema{{Name: "id", Type: bigquery.IntegerFieldType}, {Name: "d", Type: bigquery.DateFieldType}},
		TimePartitioning: &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: "d"},
	}
	if err := f.raw.Dataset(f.dataset).Table("dates").Create(ctxT(t, time.Minute), md); err != nil {
		t.Fatal(err)
	}
	f.rawExec(t, "INSERT INTO "+f.ref("dates")+" (id, d) VALUES (1, DATE '2024-01-02'), (2, DATE '2024-01-03')")
	load := func(rows string) (string, string) {
		return f.runJob(t, func() (*bigquery.Job, error) {
			src := bigquery.NewReaderSource(strings.NewReader(rows))
			src.SourceFormat = bigquery.JSON
			l := f.c.Dataset(f.dataset).Table("dates$20240102").LoaderFrom(src)
			l.WriteDisposition = bigquery.WriteTruncate
			return l.Run(ctxT(t, time.Minute))
		})
	}
	if r, m := load(`{"id":3,"d":"2024-01-03"}` + "\n"); r != "invalid" {
		t.Fatalf("a row of another day: %q %q, want invalid", r, m)
	}
	if r, m := load(`{"id":4,"d":"2024-01-02"}` + "\n"); r != "" {
		t.Fatalf("load: %s %s", r, m)
	}
	if n := f.count(t, "SELECT SUM(id) FROM "+f.ref("dates")); n != 6 {
		t.Fatalf("sum of ids = %d, want 6 (rows 2 and 4)", n)
	}
}
