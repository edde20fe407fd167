package bqfidelity

import (
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

type event struct {
	ID int64     `bigquery:"id"`
	TS time.Time `bigquery:"ts"`
}

func savers(insertID func(i int) string) []*bigquery.StructSaver {
	var out []*bigquery.StructSaver
	for i := range 3 {
		out = append(out, &bigquery.StructSaver{Schema: eventSchema, InsertID: insertID(i),
			Struct: event{ID: int64(i), TS: time.Date(2024, 1, 2, 0, 0, i, 0, time.UTC)}})
	}
	return out
}

func TestStreamedRowsWithAnInsertIDAreStoredOnce(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "ev", false)
	ins := f.c.Dataset(f.dataset).Table("ev").Inserter()
	rows := savers(func(i int) string { return "row-" + string(rune('a'+i)) })
	for range 2 { // an application-level retry with the same insertIds
		if err := ins.Put(ctxT(t, time.Minute), rows); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 3 {
		t.Fatalf("rows = %d, want 3", n)
	}
	if got := f.p.Stats().InsertAllDeduped; got != 3 {
		t.Fatalf("InsertAllDeduped = %d, want 3", got)
	}
}

func TestALostAnswerDuplicatesStreamedRowsWithoutInsertID(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "ev", false)
	f.p.Inject(Fault{Kind: "insertAll", Table: "ev", Count: 1, AfterWork: true})
	ins := f.c.Dataset(f.dataset).Table("ev").Inserter()
	// The Go client retries the 500 itself; without insertIds the retry is
	// stored again.
	if err := ins.Put(ctxT(t, time.Minute), savers(func(int) string { return bigquery.NoDedupeID })); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 6 {
		t.Fatalf("rows = %d, want 6 (each row twice)", n)
	}
	if got := f.p.Stats().InsertAllDuplicates; got != 3 {
		t.Fatalf("InsertAllDuplicates = %d, want 3", got)
	}
}

func TestALostAnswerDoesNotDuplicateStreamedRowsWithInsertID(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "ev", false)
	f.p.Inject(Fault{Kind: "insertAll", Table: "ev", Count: 1, AfterWork: true})
	ins := f.c.Dataset(f.dataset).Table("ev").Inserter()
	if err := ins.Put(ctxT(t, time.Minute), savers(func(int) string { return "" })); err != nil { // the client makes insertIds
		t.Fatal(err)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 3 {
		t.Fatalf("rows = %d, want 3", n)
	}
}

func TestMutatingDMLOnATableWithStreamedRowsFails(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.table(t, "ev", false)
	if err := f.c.Dataset(f.dataset).Table("ev").Inserter().Put(ctxT(t, time.Minute), savers(func(int) string { return "" })); err != nil {
		t.Fatal(err)
	}
	r, m := f.runJob(t, func() (*bigquery.Job, error) {
		return f.c.Query("DELETE FROM " + f.ref("ev") + " WHERE id = 1").Run(ctxT(t, time.Minute))
	})
	if r != "invalidQuery" || !containsAll(m, "would affect rows in the streaming buffer") {
		t.Fatalf("DELETE over streamed rows: %q %q", r, m)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 3 {
		t.Fatalf("rows = %d, want 3", n)
	}
}
