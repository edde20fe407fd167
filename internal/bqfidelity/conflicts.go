package bqfidelity

import (
	"sync"
	"time"
)

// Mutating DML statements that change the same partition at the same time
// conflict.
// https://cloud.google.com/bigquery/docs/data-manipulation-language#dml_statement_conflicts
// — "Mutating DML statements that run concurrently on a table cause DML
// statement conflicts when the statements try to mutate the same
// partition. The statements succeed as long as they don't modify the same
// partition. BigQuery tries to rerun failed statements up to three times."
// The failure is BigQuery's "Could not serialize access to table … due to
// concurrent update" (https://cloud.google.com/bigquery/docs/error-messages).
//
// Modelled: a mutating statement (UPDATE, DELETE, MERGE, TRUNCATE, outside
// a transaction) reads its table as of the moment it started running; if
// another one committed to one of the same partitions since, it is run
// again (RUNNING once more for the job's latency), up to three times, then
// it fails. Its partitions are the days it names as range lower bounds
// (dmlDays); one that names none, and any statement on a table that is not
// partitioned, touches every partition.

// Options.DMLConflictRetries: 0 means BigQuery's three.
const dmlConflictRetries = 3

type dmlCommit struct {
	at   time.Time
	days map[string]bool // nil: every partition
	job  *job
}

type conflicts struct {
	mu      sync.Mutex
	commits map[string][]dmlCommit // table key -> recent commits
}

func newConflicts() *conflicts { return &conflicts{commits: map[string][]dmlCommit{}} }

// mutatedDays is what a mutating statement of sql changes in a table: the
// days it names (nil: every partition, or the table is not partitioned).
func mutatedDays(sql string, partitioned bool) map[string]bool {
	if !partitioned {
		return nil
	}
	days := map[string]bool{}
	for _, m := range dayLowerBound.FindAllStringSubmatch(sql, -1) {
		days[m[1]] = true
	}
	if len(days) == 0 {
		return nil
	}
	return days
}

func overlap(a, b map[string]bool) bool {
	if a == nil || b == nil {
		return true
	}
	for d := range a {
		if b[d] {
			return true
		}
	}
	return false
}

// claim commits j's statements if nothing it changes was committed since
// snapshot; otherwise it reports the conflicting table. A claim is taken
// back (unclaim) when the work then fails.
func (c *conflicts) claim(j *job, pl *plan, sql string, snapshot time.Time) (tableRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	type want struct {
		t    tableRef
		days map[string]bool
	}
	var wants []want
	for _, st := range pl.stmts {
		if !st.mutating() {
			continue
		}
		w := want{st.table, mutatedDays(sql, pl.partitioned[st.table.key()])}
		for _, cm := range c.commits[st.table.key()] {
			if cm.job != j && cm.at.After(snapshot) && overlap(cm.days, w.days) {
				return st.table, false
			}
		}
		wants = append(wants, w)
	}
	for _, w := range wants {
		k := w.t.key()
		kept := c.commits[k][:0]
		for _, cm := range c.commits[k] { // older commits can conflict with nothing still running
			if now.Sub(cm.at) < time.Hour {
				kept = append(kept, cm)
			}
		}
		c.commits[k] = append(kept, dmlCommit{at: now, days: w.days, job: j})
	}
	return tableRef{}, true
}

func (c *conflicts) unclaim(j *job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, list := range c.commits {
		kept := list[:0]
		for _, cm := range list {
			if cm.job != j {
				kept = append(kept, cm)
			}
		}
		c.commits[k] = kept
	}
}

// commitDML runs j's conflict check at its commit: reruns (each RUNNING
// again for the rest of the job's latency) while another statement
// committed to its partitions, up to the retries, then fails it. Nil: the
// statements are claimed; call p.conflicts.unclaim(j) if the work fails.
func (p *Proxy) commitDML(j *job, pl *plan) *apiError {
	if pl.txn || !hasMutating(pl) {
		return nil
	}
	c, _ := j.config["query"].(map[string]any)
	sql, _ := c["query"].(string)
	p.jobs.mu.Lock()
	snapshot := j.started
	p.jobs.mu.Unlock()
	retries := p.opt.DMLConflictRetries
	if retries <= 0 {
		retries = dmlConflictRetries
	}
	for try := 0; ; try++ {
		t, ok := p.conflicts.claim(j, pl, sql, snapshot)
		if ok {
			return nil
		}
		p.stats.add(func(s *Stats) { s.DMLConflicts++ })
		if try == retries {
			return &apiError{Code: 400, Reason: "invalidQuery", Message: "Could not serialize access to table " + t.String() + " due to concurrent update"}
		}
		snapshot = time.Now()
		if !p.sleep(j, p.opt.JobLatency-p.opt.JobLatency/2) {
			return errStopped
		}
	}
}

func hasMutating(pl *plan) bool {
	for _, st := range pl.stmts {
		if st.mutating() {
			return true
		}
	}
	return false
}
