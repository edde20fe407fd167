package bqfidelity

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Partition counts.
// https://cloud.google.com/bigquery/quotas#partitioned_tables —
// "Maximum number of partitions per partitioned table: 10,000", and
// "Maximum number of partitions modified by a single job: 4,000. Each job
// operation (query or load) can affect up to 4,000 partitions. BigQuery
// rejects any query or load job that attempts to modify more than 4,000
// partitions."
//
// Modelled before the job runs, refused as a permanent error (invalid):
//   - a DML statement modifies the days it names as range lower bounds
//     (dmlDays), or, naming none, every partition the table has;
//   - a job writing a partition decorator modifies that one partition;
//   - a load, copy or query job writing a partitioned table without a
//     decorator adds partitions no one can tell before it runs: it is
//     refused once the table holds the per-table maximum already (stricter
//     than BigQuery, which would accept one that adds none). Its count per
//     job is not checked: the emulator cannot tell it beforehand.
// The per-table count is the table's distinct days now plus the days the
// job names that it does not hold yet.

// checkPartitions applies both maximums to job j. A load or copy job
// refused counts toward its daily quotas, as failed jobs do.
func (p *Proxy) checkPartitions(ctx context.Context, j *job, pl *plan) *apiError {
	err := p.partitionsOf(ctx, j, pl)
	if err != nil {
		p.lim.countJobQuota(j, pl)
	}
	return err
}

func (p *Proxy) partitionsOf(ctx context.Context, j *job, pl *plan) *apiError {
	c, _ := j.config[j.kind].(map[string]any)
	sql, _ := c["query"].(string)
	for _, st := range pl.stmts {
		if !st.dml() || !pl.partitioned[st.table.key()] {
			continue
		}
		days := mutatedDays(sql, true)
		if err := p.partitionCounts(ctx, j, st.table, days, st.verb == "INSERT" || st.verb == "MERGE", st.mutating()); err != nil {
			return err
		}
	}
	for _, w := range pl.writes {
		if !w.partitioned {
			continue
		}
		var days map[string]bool
		if w.ref.Decorator != "" {
			if len(w.ref.Decorator) != 8 {
				continue // not a day: the decorator rules answer it
			}
			d := w.ref.Decorator
			days = map[string]bool{d[:4] + "-" + d[4:6] + "-" + d[6:]: true}
		}
		if err := p.partitionCounts(ctx, j, w.ref, days, true, false); err != nil {
			return err
		}
	}
	return nil
}

// partitionCounts checks one table a job writes: the days it modifies
// (nil: not known — every partition when mutatesAll), and whether it may
// add partitions.
func (p *Proxy) partitionCounts(ctx context.Context, j *job, t tableRef, days map[string]bool, adds, mutatesAll bool) *apiError {
	perJob, perTable := p.opt.PartitionsPerJob, p.opt.PartitionsPerTable
	what := j.kind
	if what == "load" {
		what = "load job"
	}
	if len(days) > perJob {
		return invalid("Too many partitions produced by %s, allowed %d, %s produces at least %d partitions (%s)", what, perJob, what, len(days), t)
	}
	meta := p.tableMeta(ctx, t)
	field := partitionField(meta)
	if meta == nil || field == "" {
		return nil
	}
	existing, err := p.emuCount(ctx, j.project, fmt.Sprintf("SELECT COUNT(DISTINCT DATE(`%s`)) FROM %s", field, t.sql()))
	if err != nil {
		return err
	}
	if days == nil {
		if mutatesAll && int(existing) > perJob {
			return invalid("Too many partitions produced by query, allowed %d, query produces at least %d partitions (%s)", perJob, existing, t)
		}
		if adds && int(existing) >= perTable {
			return invalid("Too many partitions in table %s: it holds %d, the maximum is %d", t, existing, perTable)
		}
		return nil
	}
	if !adds {
		return nil
	}
	named := slices.Sorted(maps.Keys(days))
	quoted := make([]string, len(named))
	for i, d := range named {
		quoted[i] = "DATE '" + d + "'"
	}
	present, err := p.emuCount(ctx, j.project, fmt.Sprintf("SELECT COUNT(DISTINCT DATE(`%s`)) FROM %s WHERE DATE(`%s`) IN (%s)",
		field, t.sql(), field, strings.Join(quoted, ", ")))
	if err != nil {
		return err
	}
	if total := existing + int64(len(days)) - present; total > int64(perTable) {
		return invalid("Too many partitions in table %s: the job would make it %d, the maximum is %d", t, total, perTable)
	}
	return nil
}
