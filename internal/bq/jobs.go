package bq

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/googleapis/gax-go/v2"
)

// JobID is a deterministic job id: kind and label (a date) for people
// reading the job history, then a digest of everything that defines the job's work
// (table, staging generation, position, content). Starting the same work
// twice therefore names the same job, and BigQuery answers the second
// jobs.insert with 409 instead of running it again.
func JobID(kind, label string, parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%v\x00", p)
	}
	return fmt.Sprintf("pgbq_%s_%s_%s", kind, label, hex.EncodeToString(h.Sum(nil))[:32])
}

// runJob runs the job that start inserts under id and waits for it.
//
// On 409 the job already exists — the Go client re-sends jobs.insert with
// the same id after a 5xx or a lost answer, and a retry after a crash
// names the same id — so runJob adopts it and waits for it instead of
// doing the work twice. A job that ended in failure changed nothing (a job
// is atomic), so its id is spent: an adopted job that failed, cancelled
// with its request or otherwise, is stepped over with the next id of the
// family, id_r1, id_r2, …, which every process walks in the same order.
// A job runJob itself started that fails returns its error; whether to
// try again is the caller's retry policy (retry.Do), whose next call walks
// past the spent id through 409. When ctx ends, the job in flight is
// cancelled: BigQuery would otherwise go on running work nobody waits for.
func runJob(ctx context.Context, client *bigquery.Client, id string, start func(ctx context.Context, id string) (*bigquery.Job, error)) (*bigquery.Job, error) {
	return runJobPolled(ctx, client, id, time.Second, start)
}

// runJobPolled is runJob with young jobs polled at most poll apart.
func runJobPolled(ctx context.Context, client *bigquery.Client, id string, poll time.Duration, start func(ctx context.Context, id string) (*bigquery.Job, error)) (*bigquery.Job, error) {
	first := 0
	if n, ok := spent.Load(id); ok {
		first = n.(int) // this process already walked past these
	}
	for attempt := first; attempt < maxJobIDs; attempt++ {
		jid := id
		if attempt > 0 {
			jid = fmt.Sprintf("%s_r%d", id, attempt)
		}
		job, err := start(ctx, jid)
		adopted := false
		if IsStatus(err, http.StatusConflict) {
			job, err = client.JobFromIDLocation(ctx, jid, client.Location)
			adopted = true
		}
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", jid, err)
		}
		err = wait(ctx, job, poll)
		if err == nil {
			return job, nil
		}
		var jobErr *bigquery.Error
		if ctx.Err() == nil && errors.As(err, &jobErr) {
			spent.Store(id, attempt+1)
			if adopted {
				continue // an earlier attempt's failure: its id is spent
			}
		}
		return job, fmt.Errorf("job %s: %w", jid, err)
	}
	return nil, fmt.Errorf("job %s: %d ids of its family spent", id, maxJobIDs)
}

// spent remembers, per id family, the first id this process has not seen
// fail, so that a retry does not walk the spent ones again (each step is
// an insert and a read).
var spent sync.Map

// maxJobIDs bounds the id family; far above what retry.Do's attempts and
// Pub/Sub's redeliveries of one date spend.
const maxJobIDs = 1000

// wait polls job until it is done and returns its error: the
// errorResult of a failed job (a job that fails is still an HTTP 200 on
// jobs.get). It does not use job.Wait: for a query job that waits through
// getQueryResults, which answers a failed job with an HTTP error that the
// Go client retries until the context ends when its reason is retryable
// (backendError, rateLimitExceeded). If ctx ends first the job is
// cancelled: BigQuery would otherwise go on running work nobody waits for.
//
// Polls come at most pollYoung apart (a second for most jobs) while the job is young: most jobs
// end within seconds, and a day's chain of jobs (read state, load, publish,
// count) waits for each in turn, so a poll that comes late adds its delay
// to the day (measured: 2–3 s a job with polls growing to 5 s apart).
// Older jobs are polled less often, up to 5 s apart.
func wait(ctx context.Context, job *bigquery.Job, pollYoung time.Duration) error {
	const young = 15 * time.Second
	bo := gax.Backoff{Initial: 100 * time.Millisecond, Max: pollYoung, Multiplier: 1.5}
	start := time.Now()
	for {
		if time.Since(start) > young {
			bo.Max = 5 * time.Second
		}
		st, err := job.Status(ctx)
		if err == nil && st.Done() {
			return st.Err()
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
		if ctx.Err() != nil || gax.Sleep(ctx, bo.Pause()) != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = job.Cancel(cctx) // best effort: the job may have finished
			return fmt.Errorf("waiting for job %s: %w", job.ID(), ctx.Err())
		}
	}
}

// notFound reports whether err says that table does not exist: a job's
// errorResult with reason notFound, or an HTTP 404.
func notFound(err error, table string) bool {
	if IsStatus(err, http.StatusNotFound) {
		return true
	}
	var e *bigquery.Error
	return errors.As(err, &e) && e.Reason == "notFound" && strings.Contains(e.Message, table)
}
