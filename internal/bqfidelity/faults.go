package bqfidelity

import (
	"maps"
	"strings"
	"sync"
)

// Fault makes the next Count jobs (or requests) of Kind fail.
//   - AfterWork: the work is done, then the answer is HTTP 500 (a lost
//     answer); the Go client re-sends jobs.insert with the same id and gets 409.
//   - JobErrorReason: the job ends DONE with status.errorResult{reason}
//     (HTTP 200), without doing the work.
//   - neither: HTTP 500 before any work.
type Fault struct {
	Kind           string // "load", "copy", "query", "extract", "insertAll", "tables.insert", "tables.patch", "tables.delete", "upload.final"
	Table          string // optional: only when the destination/target table id contains this
	Count          int
	AfterWork      bool
	JobErrorReason string
}

type faults struct {
	mu   sync.Mutex
	list []*Fault
}

func (f *faults) add(x Fault) {
	if x.Count <= 0 {
		x.Count = 1
	}
	f.mu.Lock()
	f.list = append(f.list, &x)
	f.mu.Unlock()
}

// take returns the first armed fault matching kind and table, using up one
// of its count.
func (f *faults) take(kind, table string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.list {
		if x.Kind != kind || (x.Table != "" && !strings.Contains(table, x.Table)) {
			continue
		}
		got := *x
		x.Count--
		if x.Count == 0 {
			f.list = append(f.list[:i], f.list[i+1:]...)
		}
		return got, true
	}
	return Fault{}, false
}

// Stats counts what the proxy modelled.
type Stats struct {
	JobsRun               map[string]int // jobs that took effect, by kind (load, copy, query, extract)
	JobsFailed            map[string]int // jobs that ended DONE with errorResult, by reason
	DMLRun                map[string]int // DML statements of jobs that took effect, by verb
	TransactionConflicts  int            // transactions aborted for a concurrent update
	DMLConflicts          int            // mutating DML statements that met a concurrent commit to one of their partitions (each rerun or failure)
	DMLQueued             int            // DML statements that waited in a table's queue
	DMLQueueFull          int            // DML statements refused: too many outstanding
	RateLimited           map[string]int // refusals by limit (see limit* constants)
	Duplicate409          int            // jobs.insert answered 409 (job id reused)
	JobsCancelled         int            // jobs stopped by jobs.cancel before they took effect
	CancelsLost           int            // jobs.cancel answered while the job went on (Options.CancelLoses)
	DecoratorJobs         int            // jobs translated for a partition decorator
	UnprunableMerges      int            // MERGE statements that insert and delete by source without ON FALSE (merge.go)
	InsertAllDeduped      int            // streamed rows dropped because their insertId was seen
	InsertAllDuplicates   int            // streamed rows without insertId stored again (same content within the window)
	StreamRowsRefusedLate int            // streamed rows the emulator refused after the visibility delay
	FaultsFired           int
	UploadsCompletedAgain int            // requests to a completed resumable upload, answered with its job
	EmulatorRequests      map[string]int // requests forwarded to the emulator, by method and resource

	// BytesProcessed is what successful query jobs processed, by statement
	// type (SELECT, INSERT, MERGE, …), as on-demand pricing counts it
	// (billing.go); BytesBilled is their totalBytesBilled.
	BytesProcessed map[string]int64
	BytesBilled    int64
}

type counters struct {
	mu sync.Mutex
	s  Stats
}

func newCounters() *counters {
	return &counters{s: Stats{JobsRun: map[string]int{}, JobsFailed: map[string]int{}, DMLRun: map[string]int{}, RateLimited: map[string]int{}, EmulatorRequests: map[string]int{}, BytesProcessed: map[string]int64{}}}
}

func (c *counters) add(fn func(*Stats)) {
	c.mu.Lock()
	fn(&c.s)
	c.mu.Unlock()
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	s := p.stats.s
	s.JobsRun = maps.Clone(s.JobsRun)
	s.JobsFailed = maps.Clone(s.JobsFailed)
	s.DMLRun = maps.Clone(s.DMLRun)
	s.RateLimited = maps.Clone(s.RateLimited)
	s.EmulatorRequests = maps.Clone(s.EmulatorRequests)
	s.BytesProcessed = maps.Clone(s.BytesProcessed)
	return s
}
