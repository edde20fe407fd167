package loader

import (
	"context"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/message"
)

// A staging load refused because the project's load jobs for the day are
// spent ("Load jobs per project per day: 100,000",
// https://cloud.google.com/bigquery/quotas#load_jobs) is not the date's
// fault: the loader backs off and leaves the date to be planned again,
// recording no failure (three failures quarantine a date).
func TestProjectLoadQuotaDefersTheDate(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{LoadJobsPerProjectPerDay: 1})
	day := time.Date(2024, 6, 3, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 100, false)
	s := r.open(40)
	svc, _, _ := newService(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := svc.Handle(ctx, message.New("activity_logs", day).Encode())
	if n := proxy.Stats().RateLimited[bqfidelity.LimitLoadProjectDay]; n == 0 {
		t.Fatalf("no load was refused by the project's daily quota (err %v)", err)
	}
	if n := r.failedEntries(); n != 0 {
		t.Fatalf("the date was recorded failed %d times for a quota that is the project's, not the date's", n)
	}
	if err != nil {
		t.Fatalf("Handle: %v; want the message acked (a redelivery within seconds meets the same quota)", err)
	}
}
