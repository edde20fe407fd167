package bqfidelity

import "sync"

// Holding a job is a test's hook, not a BigQuery rule: a job may wait in
// PENDING for as long as BigQuery likes (queued behind other work, a
// reservation's slots, the DML queue), and keeps waiting after the
// process that inserted it is gone
// (https://cloud.google.com/bigquery/docs/managing-jobs). A test holds the
// jobs it picks in PENDING until it releases them, so that "the job runs
// after its requester is gone" happens at a point the test chooses, not
// after a sleep. A held job still honours a cancel that is not lost
// (Options.CancelLoses).

// HeldJob describes a job as Hold's match sees it.
type HeldJob struct {
	ID, Kind string
	SQL      string            // a query job's SQL as the client sent it
	Labels   map[string]string // the job's labels
}

type holdRule struct {
	match   func(HeldJob) bool
	held    chan string
	release chan struct{}
}

type holds struct {
	mu    sync.Mutex
	rules []*holdRule
}

// Hold keeps each job that match picks PENDING until release is called
// (or the job is cancelled and the cancel is not lost). Each held job's id
// is sent on held as it starts waiting (the channel holds 64; a full one
// drops the news, never the hold).
func (p *Proxy) Hold(match func(HeldJob) bool) (held <-chan string, release func()) {
	r := &holdRule{match: match, held: make(chan string, 64), release: make(chan struct{})}
	p.holds.mu.Lock()
	p.holds.rules = append(p.holds.rules, r)
	p.holds.mu.Unlock()
	var once sync.Once
	return r.held, func() {
		once.Do(func() {
			p.holds.mu.Lock()
			for i, x := range p.holds.rules {
				if x == r {
					p.holds.rules = append(p.holds.rules[:i], p.holds.rules[i+1:]...)
					break
				}
			}
			p.holds.mu.Unlock()
			close(r.release)
		})
	}
}

// waitHold keeps j PENDING while a hold picks it; false when j was
// cancelled (or the proxy closed) meanwhile.
func (p *Proxy) waitHold(j *job) bool {
	p.holds.mu.Lock()
	var r *holdRule
	if len(p.holds.rules) > 0 {
		info := HeldJob{ID: j.id, Kind: j.kind, SQL: clientSQL(j), Labels: jobLabels(j)}
		for _, x := range p.holds.rules {
			if x.match(info) {
				r = x
				break
			}
		}
	}
	p.holds.mu.Unlock()
	if r == nil {
		return true
	}
	select {
	case r.held <- j.id:
	default:
	}
	select {
	case <-r.release:
	case <-j.cancelCh:
	case <-p.closeCtx.Done():
	}
	return !j.isCancelled() && p.closeCtx.Err() == nil
}

// jobLabels are the labels the client gave j.
func jobLabels(j *job) map[string]string {
	out := map[string]string{}
	if m, ok := j.config["labels"].(map[string]any); ok {
		for k, v := range m {
			if s, ok := v.(string); ok {
				out[k] = s
			}
		}
	}
	return out
}
