package bqfidelity

import (
	"errors"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"
)

// A held job stays PENDING, and jobs.list shows it among the pending jobs
// with its labels, until the test releases it; then it runs and takes
// effect. A cancel that loses does not stop it.
func TestHeldJobIsListedPendingUntilReleased(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 50 * time.Millisecond, CancelLoses: 1})
	f.table(t, "ev", false)
	ctx := ctxT(t, time.Minute)
	held, release := f.p.Hold(func(j HeldJob) bool { return j.Labels["hold"] == "yes" })
	q := f.c.Query("INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))")
	q.Labels = map[string]string{"hold": "yes"}
	j, err := q.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id := <-held; id != j.ID() {
		t.Fatalf("held %s, want %s", id, j.ID())
	}
	if err := j.Cancel(ctx); err != nil { // lost
		t.Fatal(err)
	}
	pending := func() []string {
		it := f.c.Jobs(ctx)
		it.State = bigquery.Pending
		it.AllUsers = true
		var ids []string
		for {
			lj, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return ids
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := lj.Config()
			if err != nil {
				t.Fatal(err)
			}
			if qc, ok := cfg.(*bigquery.QueryConfig); ok && qc.Labels["hold"] == "yes" {
				ids = append(ids, lj.ID())
			}
		}
	}
	if got := pending(); len(got) != 1 || got[0] != j.ID() {
		t.Fatalf("pending jobs labelled hold=yes: %v, want [%s]", got, j.ID())
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 0 {
		t.Fatalf("a held job wrote %d rows", n)
	}
	release()
	st, err := waitJob(ctx, j)
	if err != nil || st.Err() != nil {
		t.Fatalf("released job: %v %v", err, st.Err())
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 1 {
		t.Fatalf("the released job wrote %d rows, want 1", n)
	}
	if got := pending(); len(got) != 0 {
		t.Fatalf("pending after the job ended: %v", got)
	}
}

// A column appended by tables.patch can be streamed into and read at once.
func TestPatchedColumnCanBeStreamedAndRead(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "ev", false)
	ctx := ctxT(t, time.Minute)
	tab := f.c.Dataset(f.dataset).Table("ev")
	meta, err := tab.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	schema := append(meta.Schema, &bigquery.FieldSchema{Name: "extra", Type: bigquery.StringFieldType})
	if _, err := tab.Update(ctx, bigquery.TableMetadataToUpdate{Schema: schema}, meta.ETag); err != nil {
		t.Fatal(err)
	}
	if err := tab.Inserter().Put(ctx, &bigquery.ValuesSaver{Schema: schema, InsertID: "r1",
		Row: []bigquery.Value{1, time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), "x"}}); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")+" WHERE extra = 'x'"); n != 1 {
		t.Fatalf("rows with the patched column: %d, want 1", n)
	}
}

// Without allUsers the layer lists no job: on BigQuery only the caller's
// own jobs are listed, and the layer cannot tell callers apart, so a client
// that needs other accounts' jobs must ask for all users.
func TestJobsListWithoutAllUsersListsNone(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	ctx := ctxT(t, 30*time.Second)
	q := f.c.Query("SELECT 1")
	j, err := q.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	count := func(all bool) int {
		it := f.c.Jobs(ctx)
		it.AllUsers = all
		n := 0
		for {
			_, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return n
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if n := count(false); n != 0 {
		t.Fatalf("jobs.list without allUsers listed %d jobs, want 0", n)
	}
	if n := count(true); n == 0 {
		t.Fatal("jobs.list with allUsers listed no job")
	}
}
