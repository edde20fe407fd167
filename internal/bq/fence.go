package bq

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
)

// The fence of the publish, in BigQuery's terms; why the publish needs it
// is the package comment of internal/publish (a job outlives its
// requester, and a cancel may lose:
// https://cloud.google.com/bigquery/docs/managing-jobs#cancel_jobs).
// Before any publish of a day starts (publish.Fence), every pgbq job
// that writes that day of the destination and may still run — PENDING or RUNNING in jobs.list — is
// cancelled and then waited for until jobs.get shows it DONE (the cancel
// may lose; then the job ends by itself). Only then does the new publish
// start, and so it is the last to write the day: the count after it, which
// finishes the date, counts what stays. Jobs are found by their labels:
// each publish job carries fenceLabel with the destination's key and one
// dayLabel per day it writes. The push service, the back-fill pool and the
// planner's rebuilds run as three service accounts, so jobs.list asks for
// every user's jobs (allUsers), which needs bigquery.jobs.listAll; reading
// and cancelling another account's job need bigquery.jobs.get and
// bigquery.jobs.update (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/list).
// Terraform grants the three in one custom role (terraform/modules/iam,
// publish_fence); without it the list fails and so does the publish, rather
// than publishing unfenced.

// fenceLabel marks a job that publishes days of a destination; its value
// is the destination's key (destKey).
const fenceLabel = "pgbq_publish"

// dayLabel is the label key of a day a publish job writes.
func dayLabel(day time.Time) string { return "pgbq_d_" + day.Format("20060102") }

// destKey names the destination in label values (lowercase letters and
// digits, at most 63 characters).
func (w *Warehouse) destKey() string {
	h := fnv.New64a()
	h.Write([]byte(w.DestRef()))
	return fmt.Sprintf("%016x", h.Sum64())
}

// publishLabels are the labels of a job that publishes days.
func (w *Warehouse) publishLabels(days []time.Time) map[string]string {
	key := w.destKey()
	l := map[string]string{fenceLabel: key}
	for _, d := range days {
		l[dayLabel(d)] = key
	}
	return l
}

// StaleJob is a publish job the fence found still able to run.
type StaleJob struct {
	ID string
	// Ran: it ended without error (its cancel lost, or it was already
	// running); it wrote its days before the publish that fenced it.
	// Otherwise it was kept from landing (cancelled, or failed).
	Ran bool
}

// Fence cancels every publish job of days of the destination that may
// still run and waits until each has ended (see the package's fence). It
// returns those jobs; none may still write the days when it returns nil.
func (w *Warehouse) Fence(ctx context.Context, days []time.Time) ([]StaleJob, error) {
	want := map[string]bool{}
	for _, d := range days {
		want[dayLabel(d)] = true
	}
	key := w.destKey()
	var found []*bigquery.Job
	for _, st := range []bigquery.State{bigquery.Pending, bigquery.Running} {
		it := w.Client.Jobs(ctx)
		it.State = st
		it.AllUsers = true
		for {
			j, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("fence %s: list jobs: %w", w.dest, err)
			}
			if writesDays(j, key, want) {
				found = append(found, j)
			}
		}
	}
	var out []StaleJob
	for _, j := range found {
		ran, err := w.end(ctx, j)
		if err != nil {
			return out, fmt.Errorf("fence %s: %w", w.dest, err)
		}
		out = append(out, StaleJob{ID: j.ID(), Ran: ran})
	}
	return out, nil
}

// writesDays reports whether j is a publish job of the destination key
// that writes one of the days in want.
func writesDays(j *bigquery.Job, key string, want map[string]bool) bool {
	cfg, err := j.Config()
	if err != nil {
		return false
	}
	var labels map[string]string
	switch c := cfg.(type) {
	case *bigquery.QueryConfig:
		labels = c.Labels
	case *bigquery.LoadConfig:
		labels = c.Labels
	case *bigquery.CopyConfig:
		labels = c.Labels
	}
	if labels[fenceLabel] != key {
		return false
	}
	for k := range want {
		if labels[k] == key {
			return true
		}
	}
	return false
}

// end cancels j and polls it until it is DONE; ran reports that it ended
// without error.
func (w *Warehouse) end(ctx context.Context, j *bigquery.Job) (ran bool, err error) {
	if err := j.Cancel(ctx); err != nil && !IsStatus(err, 404) {
		return false, fmt.Errorf("cancel job %s: %w", j.ID(), err)
	}
	bo := gax.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 1.5}
	for {
		st, err := j.Status(ctx)
		if err != nil {
			return false, fmt.Errorf("wait for job %s: %w", j.ID(), err)
		}
		if st.Done() {
			return st.Err() == nil, nil
		}
		if err := gax.Sleep(ctx, bo.Pause()); err != nil {
			return false, fmt.Errorf("wait for job %s: %w", j.ID(), err)
		}
	}
}
