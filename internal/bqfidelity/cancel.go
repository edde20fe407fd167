package bqfidelity

import "math/rand/v2"

// A cancel is a request, not a promise.
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/cancel —
// "Requests that a job be cancelled. This call will return immediately, and
// the client will need to poll for the job status to see if the cancel
// completed successfully." https://cloud.google.com/bigquery/docs/managing-jobs#cancel_jobs
// — a job may complete before the cancel takes effect. Modelled: with
// Options.CancelLoses set, that share of cancels (1 = every one) is
// answered as usual while the job goes on and completes.

// cancelLoses decides whether this cancel loses to its job.
func (p *Proxy) cancelLoses() bool {
	share := p.opt.CancelLoses
	lost := share >= 1 || share > 0 && rand.Float64() < share
	if lost {
		p.stats.add(func(s *Stats) { s.CancelsLost++ })
	}
	return lost
}
