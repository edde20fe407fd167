package bqfidelity

import (
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"
)

func TestJobsQueryReturnsRowsAfterTheJobRuns(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 300 * time.Millisecond})
	it, err := f.c.Query("SELECT x FROM UNNEST([1, 2, 3]) AS x ORDER BY x").Read(ctxT(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row[0].(int64))
	}
	if len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("rows %v, want [1 2 3]", got)
	}
	if f.p.Stats().JobsRun["query"] != 1 {
		t.Fatalf("jobs.query did not run as a job: %+v", f.p.Stats())
	}
}

// DML sent through jobs.query (Query.Read) obeys the same per-table limits.
func TestDMLThroughJobsQueryObeysTheDMLQueue(t *testing.T) {
	f := start(t, Options{JobLatency: time.Second, MutatingDMLRunning: 1, MutatingDMLQueued: 1})
	f.table(t, "ev", false)
	f.rawExec(t, "INSERT INTO "+f.ref("ev")+" (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))")
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = f.c.Query("UPDATE " + f.ref("ev") + " SET id = id + 1 WHERE TRUE").Read(ctxT(t, time.Minute))
		})
	}
	wg.Wait()
	refused := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		if apiReason(err) != "resourcesExceeded" || !strings.Contains(err.Error(), "Too many DML statements outstanding") {
			t.Fatalf("unexpected error %v", err)
		}
		refused++
	}
	if refused != 1 {
		t.Fatalf("refused %d of 3 UPDATEs with 1 running and 1 queued, want 1", refused)
	}
	if n := f.count(t, "SELECT MAX(id) FROM "+f.ref("ev")); n != 3 {
		t.Fatalf("id = %d, want 3 after two UPDATEs", n)
	}
}

// jobs.query is de-duplicated by requestId: the Go client's own retry after
// a lost answer finds the same job instead of running the DML again.
func TestJobsQueryRetryAfterALostAnswerRunsTheDMLOnce(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 200 * time.Millisecond})
	f.table(t, "ev", false)
	f.p.Inject(Fault{Kind: "query", Count: 1, AfterWork: true})
	if _, err := f.c.Query("INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))").Read(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 1 {
		t.Fatalf("rows = %d, want 1", n)
	}
	if s := f.p.Stats(); s.FaultsFired != 1 || s.JobsRun["query"] != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A jobs.query refused by a rate limit did not run: the Go client's retry
// with the same requestId is a new attempt and succeeds once the window
// has room.
func TestJobsQueryRefusedByARateLimitSucceedsOnTheClientsRetry(t *testing.T) {
	t.Parallel()
	f := start(t, Options{TableMetadataUpdatesPer10s: 1})
	f.table(t, "ev", false)
	if code, reason := patch(t, f, "fills the window"); code != 200 {
		t.Fatalf("patch: %d %s", code, reason)
	}
	if _, err := f.c.Query("ALTER TABLE " + f.ref("ev") + " ADD COLUMN c STRING").Read(ctxT(t, time.Minute)); err != nil {
		t.Fatalf("ALTER through jobs.query: %v", err)
	}
	if got := f.p.Stats().RateLimited[LimitTableMetadata]; got < 1 {
		t.Fatalf("RateLimited[%s] = %d, want the first attempt refused", LimitTableMetadata, got)
	}
}
