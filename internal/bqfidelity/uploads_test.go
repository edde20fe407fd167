package bqfidelity

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
)

// A resumable upload whose final chunk fails (not received, then received
// with its answer lost) is finished by the Go client's re-sends: the
// re-sent final chunk of the completed upload is answered with the job the
// upload made, and the rows are loaded once.
func TestResumableFinalChunkSentAgainGetsTheSameJob(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "ev", false)
	var buf bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&buf, `{"id":%d,"ts":"2024-01-02 00:00:00"}`+"\n", i)
	}
	f.p.Inject(Fault{Kind: "upload.final", Table: "ev", Count: 1})                  // not received
	f.p.Inject(Fault{Kind: "upload.final", Table: "ev", Count: 1, AfterWork: true}) // received, answer lost
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
		t.Fatalf("rows = %d, want 20000 once", n)
	}
	s := f.p.Stats()
	if s.FaultsFired != 2 || s.UploadsCompletedAgain != 1 || s.JobsRun["load"] != 1 {
		t.Fatalf("faults %d, completed uploads asked again %d, loads %d; want 2, 1, 1", s.FaultsFired, s.UploadsCompletedAgain, s.JobsRun["load"])
	}
}
