package bqfidelity

import (
	"strings"
	"testing"
	"time"
)

// Two MERGEs replacing the same day at the same time: the one that
// commits second met a concurrent update and is run again, and both take
// effect.
func TestOverlappingMergesOnOnePartitionRerunTheLoser(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 2 * time.Second})
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	f.fillDays(t, "staging", 1, 3, "2024-01-02")
	reasons, msgs := runAll(t, f, []string{publishMerge(f, "FALSE", "2024-01-02"), publishMerge(f, "FALSE", "2024-01-02")})
	for i, r := range reasons {
		if r != "" {
			t.Fatalf("MERGE %d: %s %s", i, r, msgs[i])
		}
	}
	s := f.p.Stats()
	if s.DMLConflicts != 1 || s.DMLRun["MERGE"] != 2 {
		t.Fatalf("DMLConflicts %d, MERGEs run %d; want 1 rerun and both run", s.DMLConflicts, s.DMLRun["MERGE"])
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")); n != 3 {
		t.Fatalf("dest rows = %d, want the day's 3", n)
	}
}

// MERGEs on different days of one table do not conflict.
func TestMergesOnDifferentPartitionsDoNotConflict(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 2 * time.Second})
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	f.fillDays(t, "staging", 1, 3, "2024-01-02", "2024-01-03")
	reasons, msgs := runAll(t, f, []string{publishMerge(f, "FALSE", "2024-01-02"), publishMerge(f, "FALSE", "2024-01-03")})
	for i, r := range reasons {
		if r != "" {
			t.Fatalf("MERGE %d: %s %s", i, r, msgs[i])
		}
	}
	if s := f.p.Stats(); s.DMLConflicts != 0 {
		t.Fatalf("DMLConflicts %d, want 0", s.DMLConflicts)
	}
}

// Five MERGEs of one day at once (the running limit raised to let them):
// each round one commits and the rest run again; the fifth meets its
// fourth conflict and fails, as BigQuery reruns a statement three times.
func TestAConflictingStatementFailsAfterThreeReruns(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 2 * time.Second, MutatingDMLRunning: 5})
	f.table(t, "dest", true)
	f.table(t, "staging", true)
	f.fillDays(t, "staging", 1, 3, "2024-01-02")
	sql := publishMerge(f, "FALSE", "2024-01-02")
	reasons, msgs := runAll(t, f, []string{sql, sql, sql, sql, sql})
	failed := 0
	for i, r := range reasons {
		switch {
		case r == "":
		case r == "invalidQuery" && strings.Contains(msgs[i], "Could not serialize access to table "+f.project+":"+f.dataset+".dest due to concurrent update"):
			failed++
		default:
			t.Fatalf("MERGE %d: %s %s", i, r, msgs[i])
		}
	}
	// In lockstep: one failure, four run, 4+3+2+1 conflicts. A machine
	// that delays one job past a round lets it off a conflict, so the
	// figures are bounds, and a failure is always its fourth conflict.
	if s := f.p.Stats(); failed < 1 || failed+s.DMLRun["MERGE"] != 5 || s.DMLConflicts < 4*failed {
		t.Fatalf("failed %d, run %d, conflicts %d; want at least 1 failed after 4 conflicts, the rest run", failed, s.DMLRun["MERGE"], s.DMLConflicts)
	}
}
