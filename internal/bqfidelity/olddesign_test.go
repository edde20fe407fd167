package bqfidelity

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

// The first publish design (a DML transaction per date) fails through the
// proxy as it would on BigQuery: ten dates of one table published at once
// conflict. The same ten dates published by copy jobs to partition
// decorators never conflict and land exactly once (a copy refused by the
// table's metadata rate is retried with back-off, as the loader must).
func TestOldTransactionalPublishConflictsAndDecoratorCopiesDoNot(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: time.Second})
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	var dates []string
	var vals []string
	for i := range 10 {
		d := day("2024-03-01").AddDate(0, 0, i).Format("2006-01-02")
		dates = append(dates, d)
		for k := range 3 {
			vals = append(vals, fmt.Sprintf("(%d, TIMESTAMP('%s 0%d:00:00'))", i*10+k, d, k))
		}
	}
	f.rawExec(t, "INSERT INTO "+f.ref("staging")+" (id, ts) VALUES "+strings.Join(vals, ", "))

	var sqls []string
	for _, d := range dates {
		sqls = append(sqls, publishTxn(f, d))
	}
	reasons, _ := runAll(t, f, sqls)
	failed := 0
	for _, r := range reasons {
		if r != "" {
			failed++
		}
	}
	conflicts := f.p.Stats().TransactionConflicts
	t.Logf("transactional publish of 10 dates at once: %d failed, %d conflicts", failed, conflicts)
	if conflicts == 0 || failed == 0 {
		t.Fatalf("the transactional publish showed no conflicts (failed %d)", failed)
	}

	f.rawExec(t, "DELETE FROM "+f.ref("dest")+" WHERE TRUE")
	before := f.p.Stats()
	ds := f.c.Dataset(f.dataset)
	var wg sync.WaitGroup
	errs := make([]string, len(dates))
	for i, d := range dates {
		dec := strings.ReplaceAll(d, "-", "")
		wg.Go(func() {
			for attempt := range 12 {
				c := ds.Table("dest$" + dec).CopierFrom(ds.Table("staging$" + dec))
				c.WriteDisposition = bigquery.WriteTruncate
				c.JobID = fmt.Sprintf("publish_%s_%d", dec, attempt)
				ctx := ctxT(t, 2*time.Minute)
				j, err := c.Run(ctx)
				if err != nil {
					errs[i] = err.Error()
					return
				}
				st, err := waitJob(ctx, j)
				if err != nil {
					errs[i] = err.Error()
					return
				}
				reason, msg := jobErr(t, st)
				if reason == "" {
					return
				}
				if reason != "rateLimitExceeded" {
					errs[i] = reason + " " + msg
					return
				}
				time.Sleep(2*time.Second + rand.N(2*time.Second))
			}
			errs[i] = "still rate limited"
		})
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Fatalf("publish of %s: %s", dates[i], e)
		}
	}
	after := f.p.Stats()
	if after.TransactionConflicts != before.TransactionConflicts {
		t.Fatalf("copy publishes conflicted: %d", after.TransactionConflicts-before.TransactionConflicts)
	}
	for _, d := range dates {
		if n := f.dayCount(t, d); n != 3 {
			t.Fatalf("%s has %d rows, want 3", d, n)
		}
	}
	if n := f.count(t, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM "+f.ref("dest")); n != 0 {
		t.Fatalf("%d duplicate rows", n)
	}
	t.Logf("copy publish of 10 dates: 0 conflicts, %d refused by the metadata rate and retried",
		after.RateLimited[LimitTableMetadata]-before.RateLimited[LimitTableMetadata])
}
