package bqfidelity

import (
	"net/http"
	"time"
)

// Quotas beyond the per-table ones of limits.go.
//
// https://cloud.google.com/bigquery/quotas#load_jobs — "Load jobs per
// project per day: 100,000 jobs", "including failed load jobs". Refused,
// like the per-table quota, with quotaExceeded: "Quota exceeded: Your
// project exceeded quota for imports per project." Counted over a rolling
// 24 hours (the stricter reading of "per day").
//
// https://cloud.google.com/bigquery/quotas#standard_tables — "Maximum rate
// of table metadata update operations per table: 5 operations per 10
// seconds", which counts tables.insert as well as tables.patch and
// tables.update. Modelled strictly: a tables.insert and a table delete
// (tables.delete, as DROP TABLE already is) are refused like the rest once
// the table's last 10 s hold 5 updates, and each one that took effect
// counts as one.

// LimitLoadProjectDay is the refusal count's name in Stats.RateLimited.
const LimitLoadProjectDay = "load_jobs_per_project_per_day"

// projectLoadsLocked applies the project's daily load-job quota to a load
// job and counts it (l.mu held).
func (l *limits) projectLoadsLocked(project string, now time.Time) *apiError {
	w := l.projLoads[project]
	if w == nil {
		w = &window{}
		l.projLoads[project] = w
	}
	if w.count(now, oneDay) >= l.opt.LoadJobsPerProjectPerDay {
		return l.refuse(LimitLoadProjectDay, "quotaExceeded", "Quota exceeded: Your project exceeded quota for imports per project.")
	}
	*w = append(*w, now)
	return nil
}

// metadataRoom refuses a table metadata update when the table's last 10 s
// already hold the limit, without counting it (it counts once it took
// effect: metadataDone).
func (l *limits) metadataRoom(t tableRef, what string) *apiError {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.table(t)
	if s.meta.count(time.Now()) >= l.opt.TableMetadataUpdatesPer10s || l.filled[t.Table] > 0 {
		if l.opt.Logf != nil {
			l.opt.Logf("bqfidelity: %s on %s refused: the last 10 s already hold %v", what, t, s.meta.what)
		}
		return l.refuse(LimitTableMetadata, "rateLimitExceeded", "Exceeded rate limits: too many table update operations for this table.")
	}
	return nil
}

// metadataDone counts a metadata update that took effect.
func (l *limits) metadataDone(t tableRef, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.table(t).meta.add(time.Now(), what)
}

// handleTablesDelete applies the metadata limit to tables.delete.
func (p *Proxy) handleTablesDelete(w http.ResponseWriter, r *http.Request, project, dataset, table string) {
	ref := tableRef{Project: project, Dataset: dataset, Table: table}
	p.passWithLimits(w, r, nil, "tables.delete", ref,
		func() *apiError { return p.lim.metadataRoom(ref, "tables.delete") },
		func() { p.lim.metadataDone(ref, "tables.delete") })
}
