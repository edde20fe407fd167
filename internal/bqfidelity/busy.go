package bqfidelity

// Filling a table's metadata window is a test's hook, not a BigQuery
// rule: BigQuery allows 5 table metadata update operations per table per
// 10 s (https://cloud.google.com/bigquery/quotas#standard_tables; see
// limits.go and quotas.go), and the 5 that fill a window may come from
// any process — another loader's loads, its tables.insert. A test that
// needs "this table's window is full now" at a point it chooses, for as
// long as it chooses, fills it here instead of racing the 10 s with real
// updates. While filled, every metadata update of the table (tables.insert,
// tables.patch, tables.delete, a job writing it) is refused as a full
// window is: rateLimitExceeded, counted in Stats.RateLimited under
// LimitTableMetadata.

// FillMetadataWindow keeps the metadata window of every table whose id is
// table full until release is called.
func (p *Proxy) FillMetadataWindow(table string) (release func()) {
	p.lim.mu.Lock()
	p.lim.filled[table]++
	p.lim.mu.Unlock()
	done := false
	return func() {
		p.lim.mu.Lock()
		defer p.lim.mu.Unlock()
		if !done {
			done = true
			if p.lim.filled[table]--; p.lim.filled[table] == 0 {
				delete(p.lim.filled, table)
			}
		}
	}
}
