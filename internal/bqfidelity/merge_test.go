package bqfidelity

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

const onFalseMerge = "MERGE `p.d.dest` AS T USING (\nSELECT `id`, `ts` FROM `p.s.stage` WHERE ts >= TIMESTAMP '2024-01-02' QUALIFY ROW_NUMBER() OVER (PARTITION BY `id` ORDER BY `ts`) = 1\n) AS S ON FALSE\n" +
	"WHEN NOT MATCHED BY SOURCE AND ((T.`ts` >= TIMESTAMP '2024-01-02' AND T.`ts` < TIMESTAMP '2024-01-03')) THEN DELETE\nWHEN NOT MATCHED THEN INSERT (`id`, `ts`) VALUES (S.`id`, S.`ts`)"

// The translation keeps the statement and changes only its condition and
// source: ON FALSE becomes an equality with a column of NULLs.
func TestTranslateOnFalse(t *testing.T) {
	t.Parallel()
	sh, ok := readMerge(onFalseMerge, "p", "")
	if !ok || sh.target.key() != "p.d.dest" || sh.targetAlias != "T" || sh.sourceAlias != "S" || sh.onFalseStart < 0 || !sh.insertAndPrune {
		t.Fatalf("readMerge = %+v, %v", sh, ok)
	}
	got := translateOnFalse(onFalseMerge, sh, "id", "INT64")
	for _, want := range []string{
		"USING (SELECT __bqfid_s.*, CAST(NULL AS INT64) AS __bqfid_no_match FROM (\nSELECT `id`, `ts` FROM `p.s.stage`",
		") AS __bqfid_s) AS S ON T.`id` = S.__bqfid_no_match\nWHEN NOT MATCHED BY SOURCE AND ((T.`ts` >= TIMESTAMP '2024-01-02'",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("translation\n%s\ndoes not hold\n%s", got, want)
		}
	}
	if strings.Contains(got, "ON FALSE") {
		t.Fatalf("translation kept ON FALSE:\n%s", got)
	}
	for sql, unprunable := range map[string]bool{
		onFalseMerge: false,
		strings.Replace(onFalseMerge, "ON FALSE", "ON T.`id` = S.__pgbq_no_match", 1):   true,
		strings.Replace(onFalseMerge, "ON FALSE", "ON T.id = S.id", 1):                  true,
		"MERGE d.t T USING d.s S ON T.id = S.id WHEN MATCHED THEN UPDATE SET T.x = S.x": false,
		"MERGE d.t T USING d.s S ON FALSE WHEN NOT MATCHED THEN INSERT ROW":             false,
	} {
		if got := unprunableMerge(sql); got != unprunable {
			t.Errorf("unprunableMerge(%q) = %v, want %v", sql, got, unprunable)
		}
	}
}

// Through the layer, MERGE … ON FALSE replaces the filtered day and
// nothing else, on a table big enough that DuckDB's plan for a literal
// ON FALSE would take minutes; the older equality form is counted as a
// MERGE BigQuery cannot prune.
func TestMergeOnFalseThroughLayer(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "dest", true)
	f.table(t, "stage", true)
	const rows, day = 300_000, 86_400
	f.rawExec(t, fmt.Sprintf("INSERT INTO %s (id, ts) SELECT x, TIMESTAMP_ADD(TIMESTAMP '2024-01-01', INTERVAL x SECOND) FROM UNNEST(GENERATE_ARRAY(1, %d)) AS x", f.ref("dest"), rows))
	f.rawExec(t, fmt.Sprintf("INSERT INTO %s (id, ts) SELECT x + 10000000, TIMESTAMP_ADD(TIMESTAMP '2024-01-02', INTERVAL x SECOND) FROM UNNEST(GENERATE_ARRAY(0, %d)) AS x", f.ref("stage"), day-1))
	sql := strings.NewReplacer("`p.d.dest`", f.ref("dest"), "`p.s.stage`", f.ref("stage")).Replace(onFalseMerge)
	t0 := time.Now()
	if reason, msg := f.runJob(t, func() (*bigquery.Job, error) { return f.c.Query(sql).Run(ctxT(t, 5*time.Minute)) }); reason != "" {
		t.Fatalf("MERGE ON FALSE: %s %s", reason, msg)
	}
	t.Logf("MERGE of a %d-row day into a %d-row table: %v", day, rows, time.Since(t0))
	if n := f.dayCount(t, "2024-01-02"); n != day {
		t.Fatalf("2024-01-02 holds %d rows, want %d", n, day)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")+" WHERE id >= 10000000"); n != day {
		t.Fatalf("%d staged rows in dest, want %d", n, day)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")); n != rows {
		t.Fatalf("dest holds %d rows, want %d", n, rows)
	}
	if st := f.p.Stats(); st.UnprunableMerges != 0 {
		t.Fatalf("ON FALSE counted as unprunable: %d", st.UnprunableMerges)
	}
	// The equality form: same result, but BigQuery would read every partition.
	old := strings.NewReplacer("SELECT `id`, `ts` FROM", "SELECT `id`, `ts`, CAST(NULL AS INT64) AS nm FROM", "ON FALSE", "ON T.id = S.nm").Replace(sql)
	if reason, msg := f.runJob(t, func() (*bigquery.Job, error) { return f.c.Query(old).Run(ctxT(t, 5*time.Minute)) }); reason != "" {
		t.Fatalf("MERGE ON T.id = S.nm: %s %s", reason, msg)
	}
	if st := f.p.Stats(); st.UnprunableMerges != 1 {
		t.Fatalf("unprunable MERGE statements counted: %d, want 1", st.UnprunableMerges)
	}
}
