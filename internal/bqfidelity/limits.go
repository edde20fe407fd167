package bqfidelity

import (
	"fmt"
	"sync"
	"time"
)

// Limit names, as counted in Stats.RateLimited.
const (
	LimitTableMetadata = "table_metadata_updates_per_10s"
	LimitDMLRate       = "dml_per_10s"
	LimitPartitionRate = "partition_modifications_per_10s"
	LimitPartitionDay  = "partition_modifications_per_day"
	LimitLoadDay       = "load_jobs_per_table_per_day"
	LimitCopyDay       = "copy_jobs_per_table_per_day"
	LimitTablesInsert  = "tables_insert_per_second"
)

const quotaHelp = " For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas"

// The limits below follow these pages:
//
// https://cloud.google.com/bigquery/quotas#standard_tables — "Maximum rate of
// table metadata update operations per table": 5 per 10 s. It counts
// tables.insert, tables.patch, tables.update, DDL on the table, and load, copy
// and query jobs that append to or overwrite the table. DML statements count
// toward it but are not refused by it. Modelled strictly: a job writing to a
// partition decorator counts against its table too. Refused with
// rateLimitExceeded, "Exceeded rate limits: too many table update operations
// for this table".
//
// https://cloud.google.com/bigquery/quotas#partitioned_tables — partition
// modifications per column-partitioned table: 30,000 per day and 50 per 10 s;
// every partition a job or DML statement writes counts: one for a load,
// copy or query job (they write one partition decorator here), the days a
// DML statement names for it (see dmlDays).
//
// https://cloud.google.com/bigquery/quotas#load_jobs — 1,500 load jobs per
// table per day, failed ones included. https://cloud.google.com/bigquery/quotas#copy_jobs
// — 1,000 copy jobs per destination table per day, failed ones included.
//
// https://cloud.google.com/bigquery/quotas#api_request_quotas — tables.insert:
// 10 requests per second per user (one user here).
//
// https://cloud.google.com/bigquery/docs/data-manipulation-language#update_delete_merge_dml_concurrency
// — UPDATE, DELETE and MERGE: at most 2 run at once per table, 20 more
// wait in the queue, the next one fails. INSERT: the first 1,500 in 24 hours
// run at once, then 10 run and 100 wait. https://cloud.google.com/bigquery/quotas#data-manipulation-language-statements
// — 25 DML statements per 10 s per table (modelled as a refusal,
// rateLimitExceeded).
//
// https://cloud.google.com/bigquery/docs/transactions#transaction_concurrency
// — "If a transaction mutates (update or deletes) rows in a table, then other
// transactions or DML statements that mutate rows in the same table cannot
// run concurrently. Conflicting transactions are cancelled. Conflicting DML
// statements that run outside of a transaction are queued". Modelled
// strictly: any DML (INSERT too) inside a transaction locks the table, and
// a transaction is also aborted when another job commits to one of its
// tables while it runs (snapshot isolation). The message is BigQuery's
// "Transaction is aborted due to concurrent update against table …".

type window []time.Time

// count drops entries older than span and returns how many remain.
func (w *window) count(now time.Time, span time.Duration) int {
	i := 0
	for i < len(*w) && now.Sub((*w)[i]) >= span {
		i++
	}
	*w = (*w)[i:]
	return len(*w)
}

// metaWindow is the metadata update window, with what made each update (for
// the log of a refusal).
type metaWindow struct {
	at   window
	what []string
}

func (m *metaWindow) count(now time.Time) int {
	n := len(m.at)
	left := m.at.count(now, 10*time.Second)
	m.what = m.what[n-left:]
	return left
}

func (m *metaWindow) add(now time.Time, what string) {
	m.count(now)
	m.at = append(m.at, now)
	m.what = append(m.what, what)
}

type tableState struct {
	meta                       metaWindow
	dml, parts                 window
	partsDay, loadDay, copyDay window
	insertDay                  window
	runMut, runIns             int
	queuedMut, queuedIns       int
	txns                       map[*job]bool // running transactions -> doomed
	writers                    map[*job]bool // running non-transaction writers
}

type limits struct {
	opt       Options
	stats     *counters
	mu        sync.Mutex
	cond      *sync.Cond
	tables    map[string]*tableState
	tblIns    window
	projLoads map[string]*window // load jobs by project (quotas.go)
	filled    map[string]int     // table ids whose metadata window a test keeps full (busy.go)
	closing   bool
}

func newLimits(opt Options, st *counters) *limits {
	l := &limits{opt: opt, stats: st, tables: map[string]*tableState{}, projLoads: map[string]*window{}, filled: map[string]int{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *limits) table(t tableRef) *tableState {
	s := l.tables[t.key()]
	if s == nil {
		s = &tableState{txns: map[*job]bool{}, writers: map[*job]bool{}}
		l.tables[t.key()] = s
	}
	return s
}

func (l *limits) wakeAll() {
	l.mu.Lock()
	l.cond.Broadcast()
	l.mu.Unlock()
}

// close ends every wait in a queue (the jobs end stopped).
func (l *limits) close() {
	l.mu.Lock()
	l.closing = true
	l.cond.Broadcast()
	l.mu.Unlock()
}

func (l *limits) refuse(limit, reason, msg string) *apiError {
	l.stats.add(func(s *Stats) { s.RateLimited[limit]++ })
	return &apiError{Code: statusFor(reason), Reason: reason, Message: msg + quotaHelp}
}

const oneDay = 24 * time.Hour

// tablesInsert applies the tables.insert request rate (every request counts).
func (l *limits) tablesInsert() *apiError {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.tblIns.count(now, time.Second) >= l.opt.TablesInsertPerSecond {
		return l.refuse(LimitTablesInsert, "rateLimitExceeded", "Exceeded rate limits: too many api requests per user per method for this user_method.")
	}
	l.tblIns = append(l.tblIns, now)
	return nil
}

// created counts a table's creation as a metadata update of it. Only a
// tables.insert that created the table counts: one answered "already
// exists" changed no metadata.
func (l *limits) created(t tableRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.table(t).meta.add(now, "tables.insert")
}

// metadataUpdate applies the per-table metadata update rate (tables.patch,
// tables.update).
func (l *limits) metadataUpdate(t tableRef) *apiError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.metaLocked(t, "tables.patch", time.Now())
}

func (l *limits) metaLocked(t tableRef, what string, now time.Time) *apiError {
	s := l.table(t)
	if s.meta.count(now) >= l.opt.TableMetadataUpdatesPer10s || l.filled[t.Table] > 0 {
		if l.opt.Logf != nil {
			l.opt.Logf("bqfidelity: %s on %s refused: the last 10 s already hold %v", what, t, s.meta.what)
		}
		return l.refuse(LimitTableMetadata, "rateLimitExceeded", "Exceeded rate limits: too many table update operations for this table.")
	}
	s.meta.add(now, what)
	return nil
}

func (l *limits) partitionLocked(s *tableState, now time.Time, n int) *apiError {
	if s.partsDay.count(now, oneDay)+n > l.opt.PartitionModsPerDay {
		return l.refuse(LimitPartitionDay, "quotaExceeded", "Quota exceeded: Your table exceeded quota for Number of partition modifications to a column partitioned table.")
	}
	if s.parts.count(now, 10*time.Second)+n > l.opt.PartitionModsPer10s {
		return l.refuse(LimitPartitionRate, "rateLimitExceeded", "Exceeded rate limits: too many partition modifications for this table.")
	}
	for range n {
		s.parts = append(s.parts, now)
		s.partsDay = append(s.partsDay, now)
	}
	return nil
}

// countJobQuota counts a load or copy job that failed before it was admitted
// (failed load jobs count toward the daily per-table quota).
func (l *limits) countJobQuota(j *job, pl *plan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if pl.kind == "load" {
		_ = l.projectLoadsLocked(j.project, now)
	}
	for _, w := range pl.writes {
		s := l.table(w.ref)
		switch pl.kind {
		case "load":
			s.loadDay = append(s.loadDay, now)
		case "copy":
			s.copyDay = append(s.copyDay, now)
		}
	}
}

// admit applies every limit to a job that is about to run. It may wait (a
// DML statement in a table's queue). It registers the job as running; the
// caller must call l.release(j, pl, committed) afterwards.
func (l *limits) admit(j *job, pl *plan, cancelled func() bool) *apiError {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	// Daily job quotas count failed jobs too, so they are spent first.
	if pl.kind == "load" {
		if err := l.projectLoadsLocked(j.project, now); err != nil {
			return err
		}
	}
	for _, w := range pl.writes {
		s := l.table(w.ref)
		switch pl.kind {
		case "load":
			if s.loadDay.count(now, oneDay) >= l.opt.LoadJobsPerTablePerDay {
				return l.refuse(LimitLoadDay, "quotaExceeded", "Quota exceeded: Your table exceeded quota for imports or query appends per table.")
			}
			s.loadDay = append(s.loadDay, now)
		case "copy":
			if s.copyDay.count(now, oneDay) >= l.opt.CopyJobsPerTablePerDay {
				return l.refuse(LimitCopyDay, "quotaExceeded", "Quota exceeded: Your table exceeded quota for copies per table.")
			}
			s.copyDay = append(s.copyDay, now)
		}
	}
	for _, w := range pl.writes {
		s := l.table(w.ref)
		if err := l.metaLocked(w.ref, pl.kind+" job "+j.id, now); err != nil {
			return err
		}
		if w.partitioned {
			if err := l.partitionLocked(s, now, 1); err != nil {
				return err
			}
		}
	}
	for _, st := range pl.stmts {
		s := l.table(st.table)
		switch {
		case st.ddl():
			if err := l.metaLocked(st.table, st.verb+" job "+j.id, now); err != nil {
				return err
			}
		case st.dml():
			if s.dml.count(now, 10*time.Second) >= l.opt.DMLPer10s {
				return l.refuse(LimitDMLRate, "rateLimitExceeded", "Exceeded rate limits: too many DML statements against table "+st.table.String()+".")
			}
			s.dml = append(s.dml, now)
			s.meta.add(now, st.verb+" job "+j.id) // counts, never refused
			if pl.partitioned[st.table.key()] {
				if err := l.partitionLocked(s, now, pl.days); err != nil {
					return err
				}
			}
		}
	}
	if pl.txn {
		for _, t := range pl.dmlTables() {
			s := l.table(t)
			if len(s.txns) > 0 || len(s.writers) > 0 {
				l.stats.add(func(x *Stats) { x.TransactionConflicts++ })
				return txnAborted(t, j)
			}
		}
		for _, t := range pl.dmlTables() {
			l.table(t).txns[j] = false
		}
		return nil
	}
	if err := l.queueDML(pl, cancelled); err != nil {
		return err
	}
	for _, t := range pl.writeTables() {
		l.table(t).writers[j] = true
	}
	return nil
}

// queueDML waits for a running slot for each DML statement outside a
// transaction: behind running transactions on the table, 2 mutating (10
// INSERT after the first 1,500 a day) at a time, with a bounded queue.
func (l *limits) queueDML(pl *plan, cancelled func() bool) (err *apiError) {
	var held []stmt // slots taken so far, given back if a later statement fails
	defer func() {
		if err == nil {
			return
		}
		for _, st := range held {
			if st.mutating() {
				l.table(st.table).runMut--
			} else {
				l.table(st.table).runIns--
			}
		}
		l.cond.Broadcast()
	}()
	for _, st := range pl.stmts {
		if !st.dml() {
			continue
		}
		s := l.table(st.table)
		now := time.Now()
		if st.mutating() {
			if s.queuedMut >= l.opt.MutatingDMLQueued && (s.runMut >= l.opt.MutatingDMLRunning || len(s.txns) > 0) {
				l.stats.add(func(x *Stats) { x.DMLQueueFull++ })
				return &apiError{Code: 400, Reason: "resourcesExceeded", Message: fmt.Sprintf(
					"Resources exceeded during query execution: Too many DML statements outstanding against table %s, limit is %d.", st.table, l.opt.MutatingDMLQueued)}
			}
			queued := false
			for s.runMut >= l.opt.MutatingDMLRunning || len(s.txns) > 0 {
				if !queued {
					queued = true
					s.queuedMut++
					l.stats.add(func(x *Stats) { x.DMLQueued++ })
				}
				if cancelled() || l.closing {
					s.queuedMut--
					return errStopped
				}
				l.cond.Wait()
			}
			if queued {
				s.queuedMut--
			}
			s.runMut++
			held = append(held, st)
			continue
		}
		limited := s.insertDay.count(now, oneDay) >= l.opt.InsertDMLFreePerDay
		s.insertDay = append(s.insertDay, now)
		if !limited && len(s.txns) == 0 {
			s.runIns++
			held = append(held, st)
			continue
		}
		if s.queuedIns >= l.opt.InsertDMLQueued {
			l.stats.add(func(x *Stats) { x.DMLQueueFull++ })
			return &apiError{Code: 400, Reason: "resourcesExceeded", Message: fmt.Sprintf(
				"Resources exceeded during query execution: Too many DML statements outstanding against table %s, limit is %d.", st.table, l.opt.InsertDMLQueued)}
		}
		s.queuedIns++
		l.stats.add(func(x *Stats) { x.DMLQueued++ })
		for (limited && s.runIns >= l.opt.InsertDMLRunning) || len(s.txns) > 0 {
			if cancelled() || l.closing {
				s.queuedIns--
				return errStopped
			}
			l.cond.Wait()
		}
		s.queuedIns--
		s.runIns++
		held = append(held, st)
	}
	return nil
}

// commitCheck: a transaction whose table another job committed to while it
// ran is aborted at its commit.
func (l *limits) commitCheck(j *job, pl *plan) *apiError {
	if !pl.txn {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range pl.dmlTables() {
		if l.table(t).txns[j] {
			l.stats.add(func(x *Stats) { x.TransactionConflicts++ })
			return txnAborted(t, j)
		}
	}
	return nil
}

// release unregisters a running job; a committed non-transaction write dooms
// the transactions running on the same table.
func (l *limits) release(j *job, pl *plan, committed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range pl.dmlTables() {
		delete(l.table(t).txns, j)
	}
	if !pl.txn {
		for _, st := range pl.stmts {
			if !st.dml() {
				continue
			}
			s := l.table(st.table)
			if st.mutating() {
				s.runMut--
			} else {
				s.runIns--
			}
		}
		for _, t := range pl.writeTables() {
			s := l.table(t)
			delete(s.writers, j)
			if committed {
				for tx := range s.txns {
					s.txns[tx] = true
				}
			}
		}
	}
	l.cond.Broadcast()
}

var errStopped = &apiError{Code: 200, Reason: "stopped", Message: "Job execution was cancelled: User requested cancellation"}

func txnAborted(t tableRef, j *job) *apiError {
	return &apiError{Code: 400, Reason: "invalidQuery", Message: "Transaction is aborted due to concurrent update against table " +
		t.String() + ". Transaction ID: " + j.id}
}
