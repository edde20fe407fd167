package bqfidelity

import (
	"net/http"
	"slices"
	"sort"
	"strings"
)

// jobs.list answers from the layer's own job table (the emulator does not
// know the jobs the layer runs): the caller's jobs, newest first, filtered
// by stateFilter (pending, running, done; repeated). Without allUsers the
// real service lists only the caller's own jobs; the layer cannot tell
// callers apart (no credentials reach it), so it takes the stricter reading
// that every job may be another account's and lists none: a client that
// must see other processes' jobs (pgbq's publish fence: the push service,
// the back-fill pool and the planner run as three accounts) has to ask for
// allUsers, as it must on BigQuery. With projection "full" each entry
// carries the configuration, labels included.
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/list
func (p *Proxy) handleJobsList(w http.ResponseWriter, r *http.Request, project string) {
	q := r.URL.Query()
	var states []string
	for _, s := range q["stateFilter"] {
		states = append(states, strings.ToUpper(s))
	}
	full := q.Get("projection") == "full"
	allUsers := q.Get("allUsers") == "true"
	p.jobs.mu.Lock()
	var picked []*job
	for _, j := range p.jobs.jobs {
		if allUsers && j.project == project && (len(states) == 0 || slices.Contains(states, j.state)) {
			picked = append(picked, j)
		}
	}
	p.jobs.mu.Unlock()
	sort.Slice(picked, func(a, b int) bool { return picked[a].created.After(picked[b].created) })
	out := make([]any, 0, len(picked))
	for _, j := range picked {
		res := p.resource(j)
		status, _ := res["status"].(map[string]any)
		state, _ := status["state"].(string)
		e := map[string]any{"id": res["id"], "kind": res["kind"], "jobReference": res["jobReference"], "state": state,
			"status": status, "statistics": res["statistics"], "user_email": res["user_email"]}
		if errResult, ok := status["errorResult"]; ok {
			e["errorResult"] = errResult
		}
		if full {
			e["configuration"] = res["configuration"]
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "bigquery#jobList", "jobs": out})
}
