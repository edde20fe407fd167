package bqfidelity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

func TestJobIsPendingThenRunningThenDoneAndTakesEffectOnlyThen(t *testing.T) {
	f := start(t, Options{JobLatency: 2 * time.Second})
	f.table(t, "ev", false)
	ctx := ctxT(t, time.Minute)
	q := f.c.Query("INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))")
	j, err := q.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := j.LastStatus(); st.State != bigquery.Pending {
		t.Fatalf("jobs.insert answered state %v, want PENDING", st.State)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 0 {
		t.Fatalf("the insert took effect before the job ran: %d rows", n)
	}
	seen := map[bigquery.State]bool{}
	var st *bigquery.JobStatus
	for st == nil || !st.Done() {
		n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev"))
		if st, err = j.Status(ctx); err != nil {
			t.Fatal(err)
		}
		seen[st.State] = true
		if n != 0 && !st.Done() {
			t.Fatalf("rows visible while the job is %v", st.State)
		}
		time.Sleep(40 * time.Millisecond)
	}
	if !seen[bigquery.Running] {
		t.Errorf("never saw RUNNING: %v", seen)
	}
	if st.Err() != nil {
		t.Fatal(st.Err())
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 1 {
		t.Fatalf("rows after DONE = %d, want 1", n)
	}
}

func TestJobKeepsRunningWhenTheClientGoesAway(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 500 * time.Millisecond})
	f.table(t, "ev", false)
	ctx, cancel := context.WithCancel(context.Background())
	q := f.c.Query("INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))")
	q.JobID = name("gone")
	if _, err := q.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel() // the client gives up; the job does not
	j, err := f.c.JobFromID(ctxT(t, time.Minute), q.JobID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := waitJob(ctxT(t, time.Minute), j)
	if err != nil || st.Err() != nil {
		t.Fatalf("job: %v %v", err, st.Err())
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 1 {
		t.Fatalf("rows = %d, want 1", n)
	}
}

func TestCancelStopsAJobThatHasNotTakenEffect(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 3 * time.Second})
	f.table(t, "ev", false)
	ctx := ctxT(t, time.Minute)
	j, err := f.c.Query("INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))").Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := waitJob(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := jobErr(t, st); r != "stopped" {
		t.Fatalf("cancelled job ended with reason %q, want stopped", r)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 0 {
		t.Fatalf("a cancelled job wrote %d rows", n)
	}
	if got := f.p.Stats().JobsCancelled; got != 1 {
		t.Fatalf("JobsCancelled = %d, want 1", got)
	}
}

func TestGetQueryResultsIsIncompleteUntilTheJobIsDone(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 2 * time.Second})
	ctx := ctxT(t, time.Minute)
	q := f.c.Query("SELECT 41 + 1 AS n")
	j, err := q.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := send(t, http.MethodGet, fmt.Sprintf("%sprojects/%s/queries/%s?timeoutMs=0&location=US", f.p.Endpoint(), f.project, j.ID()), nil)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body["jobComplete"] != false {
		t.Fatalf("getQueryResults right after insert: %v, want jobComplete=false", body)
	}
	it, err := j.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil || row[0] != int64(42) {
		t.Fatalf("row %v, err %v", row, err)
	}
}

func TestReusedJobIDIsRejectedWith409Duplicate(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	ctx := ctxT(t, time.Minute)
	q := f.c.Query("SELECT 1")
	q.JobID = name("same")
	if _, err := q.Run(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := q.Run(ctx)
	if httpCode(err) != 409 || apiReason(err) != "duplicate" || !strings.Contains(err.Error(), "Already Exists: Job "+f.project+":US."+q.JobID) {
		t.Fatalf("second insert with the same id: %v, want 409 duplicate Already Exists", err)
	}
	if got := f.p.Stats().Duplicate409; got != 1 {
		t.Fatalf("Duplicate409 = %d, want 1", got)
	}
}

func TestLostAnswerMakesTheClientsOwnRetryGet409AndTheWorkIsDoneOnce(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 200 * time.Millisecond})
	f.table(t, "ev", false)
	f.p.Inject(Fault{Kind: "query", Count: 1, AfterWork: true})
	ctx := ctxT(t, 2*time.Minute)
	q := f.c.Query("INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))")
	q.JobID = name("lost")
	_, err := q.Run(ctx) // 500, then the Go client re-sends the same id
	if httpCode(err) != 409 {
		t.Fatalf("Run after a lost answer: %v, want the client's retry to get 409", err)
	}
	j, err := f.c.JobFromID(ctx, q.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := waitJob(ctx, j); err != nil || st.Err() != nil {
		t.Fatalf("adopted job: %v %v", err, st.Err())
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 1 {
		t.Fatalf("rows = %d, want exactly 1", n)
	}
}

func TestLostAnswerToALoadUploadThen409OnTheSameID(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 200 * time.Millisecond})
	f.table(t, "ev", false)
	f.p.Inject(Fault{Kind: "load", Table: "ev", Count: 1, AfterWork: true})
	ctx := ctxT(t, 2*time.Minute)
	load := func() error {
		src := bigquery.NewReaderSource(strings.NewReader(`{"id":1,"ts":"2024-01-02 00:00:00"}` + "\n" + `{"id":2,"ts":"2024-01-02 01:00:00"}` + "\n"))
		src.SourceFormat = bigquery.JSON
		l := f.c.Dataset(f.dataset).Table("ev").LoaderFrom(src)
		l.JobID = "load_fixed_" + f.dataset
		_, err := l.Run(ctx)
		return err
	}
	if err := load(); httpCode(err) != 500 {
		t.Fatalf("first load: %v, want the lost answer (500); the client does not retry uploads", err)
	}
	if err := load(); httpCode(err) != 409 {
		t.Fatalf("second load with the same id: %v, want 409", err)
	}
	j, err := f.c.JobFromID(ctx, "load_fixed_"+f.dataset)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := waitJob(ctx, j); err != nil || st.Err() != nil {
		t.Fatalf("load: %v %v", err, st.Err())
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 2 {
		t.Fatalf("rows = %d, want 2 (loaded once)", n)
	}
}
