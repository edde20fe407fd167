package bqfidelity

import (
	"testing"
	"time"
)

// A cancel that loses: jobs.cancel answers, the job goes on and writes.
func TestACancelMayLoseToItsJob(t *testing.T) {
	t.Parallel()
	f := start(t, Options{JobLatency: 2 * time.Second, CancelLoses: 1})
	f.table(t, "ev", false)
	ctx := ctxT(t, time.Minute)
	j, err := f.c.Query("INSERT INTO " + f.ref("ev") + " (id, ts) VALUES (1, TIMESTAMP('2024-01-02'))").Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Cancel(ctx); err != nil {
		t.Fatalf("jobs.cancel: %v", err)
	}
	st, err := waitJob(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if r, msg := jobErr(t, st); r != "" {
		t.Fatalf("the job ended %s %s; the cancel should have lost", r, msg)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM "+f.ref("ev")); n != 1 {
		t.Fatalf("rows = %d, want the job's one", n)
	}
	if s := f.p.Stats(); s.CancelsLost != 1 || s.JobsCancelled != 0 {
		t.Fatalf("CancelsLost %d JobsCancelled %d, want 1 and 0", s.CancelsLost, s.JobsCancelled)
	}
}
