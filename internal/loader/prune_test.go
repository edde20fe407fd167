package loader

import (
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bqfidelity"
)

// The publish MERGE joins ON FALSE, the constant false predicate with
// which BigQuery prunes the destination to the days the statement names;
// any other condition is a full outer join that reads every partition of
// the destination at each publish. The fidelity layer counts a MERGE that
// inserts and deletes by source without it (and translates ON FALSE for
// DuckDB, which plans it as a nested loop).
func TestPublishMergeIsPrunable(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{})
	first := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, first, 2, 30, false)
	s := r.open(100)
	setNoDirect(s, true) // the staging path's MERGE
	for i := range 2 {
		day := first.AddDate(0, 0, i)
		if got := r.syncAll(s, day); got != Finished {
			t.Fatalf("%s: outcome %v", day.Format(time.DateOnly), got)
		}
		r.check(day)
	}
	if st := proxy.Stats(); st.DMLRun["MERGE"] < 1 || st.UnprunableMerges != 0 {
		t.Fatalf("%d MERGE statements, %d of them unprunable (not ON FALSE); want at least one, none unprunable",
			st.DMLRun["MERGE"], st.UnprunableMerges)
	}
}
