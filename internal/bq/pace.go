package bq

import (
	"context"
	"slices"
	"sync"
	"time"
)

// TableWritesPer10s is BigQuery's limit on jobs that write one table:
// "Maximum rate of table metadata update operations per table", 5 per
// 10 s, which counts load, copy and query jobs appending to or overwriting
// the table (https://cloud.google.com/bigquery/quotas#standard_tables).
const TableWritesPer10s = 5

// Pacer spaces the jobs one process starts against one table so that
// they stay under TableWritesPer10s: at most that many starts in any 10 s
// window (plus a margin for the jobs' own spread). Other processes writing
// the same table are not seen; their excess meets rateLimitExceeded, which
// retries wait out.
type Pacer struct {
	mu     sync.Mutex
	starts []time.Time
}

const paceWindow = 10*time.Second + 500*time.Millisecond

// Record counts a write of the table made at t by other means, such as
// its creation (tables.insert counts toward the same limit).
func (p *Pacer) Record(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(t) >= paceWindow {
		return
	}
	i := len(p.starts)
	for i > 0 && p.starts[i-1].After(t) {
		i--
	}
	p.starts = slices.Insert(p.starts, i, t)
}

// Wait blocks until one more job may start, or ctx ends.
func (p *Pacer) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := time.Now()
		for len(p.starts) > 0 && now.Sub(p.starts[0]) >= paceWindow {
			p.starts = p.starts[1:]
		}
		if len(p.starts) < TableWritesPer10s {
			p.starts = append(p.starts, now)
			p.mu.Unlock()
			return nil
		}
		wait := paceWindow - now.Sub(p.starts[0])
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// Publishes replace days of the destination with DML (Warehouse.PublishDays),
// which BigQuery limits per table to 25 statements per 10 s
// (https://cloud.google.com/bigquery/quotas#data-manipulation-language-statements)
// and 50 partition modifications per 10 s
// (https://cloud.google.com/bigquery/quotas#partitioned_tables); DML counts
// toward the 5 writes per 10 s of TableWritesPer10s without being refused
// by it.
const (
	DMLPer10s           = 25
	PartitionModsPer10s = 50
	// PublishBatch is the most days one publish replaces.
	PublishBatch = 8
)

// PublishHold is how long the loaders' turn at publishing (one publish of
// a table at a time) is kept after a publish of n days started. Starts
// are then at least paceWindow/DMLPer10s apart, and a publish of n days is
// followed by n × paceWindow/(PartitionModsPer10s − PublishBatch) before
// the next: the publishes starting in any 10 s window other than the last
// replace fewer than PartitionModsPer10s − PublishBatch days, the last at
// most PublishBatch, so the window holds fewer than PartitionModsPer10s.
func PublishHold(n int) time.Duration {
	return max(paceWindow/DMLPer10s, time.Duration(n)*paceWindow/(PartitionModsPer10s-PublishBatch))
}
