package bqfidelity

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
)

// Job failures arrive as DONE + status.errorResult on HTTP 200, with the
// reason real BigQuery gives.
func TestJobFailuresAreDoneWithErrorResultAndBigQuerysReason(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 100 * time.Millisecond})
	f.table(t, "ev", false)
	ds := f.c.Dataset(f.dataset)
	jsonRows := func(s string) *bigquery.ReaderSource {
		src := bigquery.NewReaderSource(strings.NewReader(s))
		src.SourceFormat = bigquery.JSON
		return src
	}
	cases := []struct {
		name       string
		run        func() (*bigquery.Job, error)
		wantReason string
		wantMsg    string
	}{
		{"copy from a missing table", func() (*bigquery.Job, error) {
			return ds.Table("ev_copy").CopierFrom(ds.Table("missing")).Run(ctxT(t, time.Minute))
		}, "notFound", "Not found: Table " + f.project + ":" + f.dataset + ".missing"},
		{"query on a missing table", func() (*bigquery.Job, error) {
			return f.c.Query("SELECT * FROM " + f.ref("missing")).Run(ctxT(t, time.Minute))
		}, "notFound", "Not found: Table " + f.project + ":" + f.dataset + ".missing"},
		{"bad SQL", func() (*bigquery.Job, error) {
			return f.c.Query("SELEC 1").Run(ctxT(t, time.Minute))
		}, "invalidQuery", "Syntax error"},
		{"load that does not match the schema", func() (*bigquery.Job, error) {
			return ds.Table("ev").LoaderFrom(jsonRows(`{"id":"not a number","ts":"x"}` + "\n")).Run(ctxT(t, time.Minute))
		}, "invalid", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, err := tc.run()
			if err != nil {
				t.Fatalf("jobs.insert: %v (a job failure must not be an HTTP error)", err)
			}
			st, err := waitJob(ctxT(t, time.Minute), j)
			if err != nil {
				t.Fatalf("jobs.get: %v", err)
			}
			reason, msg := jobErr(t, st)
			if reason != tc.wantReason || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("errorResult %q %q, want %q containing %q", reason, msg, tc.wantReason, tc.wantMsg)
			}
		})
	}
}

func TestInjectedJobErrorReasonsArriveAsErrorResult(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "ev", false)
	for _, reason := range []string{"internalError", "backendError", "rateLimitExceeded", "notFound"} {
		t.Run(reason, func(t *testing.T) {
			f.p.Inject(Fault{Kind: "query", Count: 1, JobErrorReason: reason})
			ctx := ctxT(t, time.Minute)
			j, err := f.c.Query("INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))").Run(ctx)
			if err != nil {
				t.Fatalf("jobs.insert: %v", err)
			}
			st, err := waitJob(ctx, j)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := jobErr(t, st); got != reason {
				t.Fatalf("reason %q, want %q", got, reason)
			}
		})
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 0 {
		t.Fatalf("failed jobs wrote %d rows", n)
	}
}

func TestResumableUploadIsBufferedAndLoaded(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "ev", false)
	var buf bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&buf, `{"id":%d,"ts":"2024-01-02 00:00:00"}`+"\n", i)
	}
	src := bigquery.NewReaderSource(&buf)
	src.SourceFormat = bigquery.JSON
	l := f.c.Dataset(f.dataset).Table("ev").LoaderFrom(src)
	l.MediaOptions = []googleapi.MediaOption{googleapi.ChunkSize(256 << 10)} // several chunks
	ctx := ctxT(t, 2*time.Minute)
	j, err := l.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := waitJob(ctx, j)
	if err != nil || st.Err() != nil {
		t.Fatalf("load: %v %v", err, st.Err())
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 20000 {
		t.Fatalf("rows = %d, want 20000", n)
	}
}
