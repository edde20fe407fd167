package bqfidelity

import (
	"testing"
	"time"
)

// With a visibility delay, accepted rows are not yet seen by queries; they
// are once the delay has passed (here: the proxy closes, which writes what
// waits, so the test does not wait out the delay).
func TestStreamedRowsAreVisibleOnlyAfterTheDelay(t *testing.T) {
	t.Parallel()
	f := start(t, Options{StreamingVisibilityDelay: time.Hour})
	f.table(t, "ev", false)
	ins := f.c.Dataset(f.dataset).Table("ev").Inserter()
	if err := ins.Put(ctxT(t, time.Minute), savers(func(i int) string { return "" })); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 0 {
		t.Fatalf("rows visible at once: %d, want 0 within the delay", n)
	}
	f.p.Close()
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 3 {
		t.Fatalf("rows after the delay = %d, want 3", n)
	}
}

// HiddenRows counts the rows still waiting for their (randomly longer)
// visibility, and none once they are written.
func TestHiddenRowsCountsRowsWaitingToBeVisible(t *testing.T) {
	t.Parallel()
	f := start(t, Options{StreamingVisibilityDelay: time.Hour, StreamingVisibilityJitter: time.Hour})
	f.table(t, "ev", false)
	ins := f.c.Dataset(f.dataset).Table("ev").Inserter()
	if err := ins.Put(ctxT(t, time.Minute), savers(func(i int) string { return "" })); err != nil {
		t.Fatal(err)
	}
	if n := f.p.HiddenRows(f.project, f.dataset, "ev"); n != 3 {
		t.Fatalf("hidden rows = %d, want 3", n)
	}
	f.p.Close()
	if n := f.p.HiddenRows(f.project, f.dataset, "ev"); n != 0 {
		t.Fatalf("hidden rows after the delay = %d, want 0", n)
	}
}
