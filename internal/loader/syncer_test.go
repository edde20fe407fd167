package loader

import (
	"testing"
	"time"
)

func TestSyncDaysExactlyOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, 70)
	first := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, first, 3, 250, false)
	s := r.open(70)
	for d := 0; d < 3; d++ {
		day := first.AddDate(0, 0, d)
		if got := r.syncAll(s, day); got != Finished {
			t.Fatalf("day %d outcome %v, want finished", d, got)
		}
		if n := r.check(day); n != 250 {
			t.Fatalf("source day has %d rows, want 250", n)
		}
		if e := r.entry(day); !e.IsFinished || e.SourceRows != 250 || e.BigQueryRows != 250 || e.LastMaxID != int64(250*(d+1)) {
			t.Fatalf("sync_control entry = %+v", e)
		}
	}
}
