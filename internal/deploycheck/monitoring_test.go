package deploycheck

import (
	"encoding/json"
	"math/big"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/pgbq/pgbq/internal/docscheck"
	"github.com/pgbq/pgbq/internal/tfeval"
)

// builtinMetrics are the Google Cloud metrics the alerts and the dashboard
// may read besides pgbq's own log-based metrics, with the monitored
// resource type each belongs to.
var builtinMetrics = map[string]string{
	"pubsub.googleapis.com/subscription/num_undelivered_messages":   "pubsub_subscription",
	"pubsub.googleapis.com/subscription/oldest_unacked_message_age": "pubsub_subscription",
	"run.googleapis.com/job/completed_execution_count":              "cloud_run_job",
	"run.googleapis.com/request_count":                              "cloud_run_revision",
}

// monitored is what an environment's monitoring may refer to: its
// log-based metrics (type -> the metric's resource), and the names of
// its loader service, back-fill worker pool, planner job and
// subscriptions.
type monitored struct {
	metrics       map[string]tfeval.Resource // logging.googleapis.com/user/NAME -> metric
	loader        string
	pool          string
	planner       string
	push          string
	pull          string
	deadLetter    string
	subscriptions map[string]bool
}

func monitoredOf(t *testing.T, in *tfeval.Instance) monitored {
	t.Helper()
	m := monitored{metrics: map[string]tfeval.Resource{}, subscriptions: map[string]bool{}}
	for _, r := range check(in.AllResources("google_logging_metric")).of(t) {
		name, _, err := r.Str("name")
		if err != nil {
			t.Fatal(err)
		}
		typ := "logging.googleapis.com/user/" + name
		if _, dup := m.metrics[typ]; dup {
			t.Errorf("two log-based metrics named %s", name)
		}
		m.metrics[typ] = r
	}
	run := cloudRun(t, in)
	m.loader, _, _ = run[0].resource.Str("name")
	m.planner, _, _ = run[1].resource.Str("name")
	m.pool, _, _ = single(t, in, "google_cloud_run_v2_worker_pool").Str("name")
	m.pull, _, _ = backfillSubscription(t, in).Str("name")
	push := pushSubscription(t, in)
	m.push, _, _ = push.Str("name")
	dlTopic, _, _ := check(push.One("dead_letter_policy")).of(t).Str("dead_letter_topic")
	for _, s := range check(in.AllResources("google_pubsub_subscription")).of(t) {
		name, _, _ := s.Str("name")
		m.subscriptions[name] = true
		if topic, _, _ := s.Str("topic"); topic == dlTopic {
			m.deadLetter = name
		}
	}
	if m.deadLetter == "" {
		t.Fatalf("%s: no subscription on the dead-letter topic", in.Path)
	}
	return m
}

var filterTermRE = regexp.MustCompile(`([A-Za-z_.]+)\s*=\s*"([^"]*)"`)

// filterTerms reads a monitoring filter's key="value" terms.
func filterTerms(filter string) map[string]string {
	out := map[string]string{}
	for _, m := range filterTermRE.FindAllStringSubmatch(filter, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// checkFilter holds a monitoring filter to what the environment defines:
// its metric exists (a log-based metric of the stack, or a built-in one
// on its own resource type) and the resources it names are the stack's.
func (m monitored) checkFilter(t *testing.T, where, filter string) map[string]string {
	t.Helper()
	terms := filterTerms(filter)
	typ := terms["metric.type"]
	switch res, builtin := builtinMetrics[typ]; {
	case builtin:
		if terms["resource.type"] != res {
			t.Errorf("%s: %s is a %s metric, the filter says resource.type %q", where, typ, res, terms["resource.type"])
		}
	case strings.HasPrefix(typ, "logging.googleapis.com/user/"):
		metric, ok := m.metrics[typ]
		if !ok {
			t.Errorf("%s: refers to %s, which no google_logging_metric of the environment defines", where, typ)
			break
		}
		// The metric counts lines of one resource type; the filter must
		// ask for that one.
		mf, _, _ := metric.Str("filter")
		if want := filterTerms(mf)["resource.type"]; terms["resource.type"] != want {
			t.Errorf("%s: %s counts %s logs, the filter says resource.type %q", where, typ, want, terms["resource.type"])
		}
	default:
		t.Errorf("%s: metric.type %q is neither a log-based metric of the stack nor a known built-in metric", where, typ)
	}
	if v, ok := terms["resource.labels.subscription_id"]; ok && !m.subscriptions[v] {
		t.Errorf("%s: subscription %q is not one of the stack's", where, v)
	}
	if v, ok := terms["resource.labels.service_name"]; ok && v != m.loader {
		t.Errorf("%s: service %q is not the loader %q", where, v, m.loader)
	}
	if v, ok := terms["resource.labels.worker_pool_name"]; ok && v != m.pool {
		t.Errorf("%s: worker pool %q is not the back-fill pool %q", where, v, m.pool)
	}
	if v, ok := terms["resource.labels.job_name"]; ok && v != m.planner {
		t.Errorf("%s: job %q is not the planner %q", where, v, m.planner)
	}
	return terms
}

// runbookAnchors are the GitHub anchors of the headings of docs/runbook.md.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	page := string(check(os.ReadFile(repo(t, "docs/runbook.md"))).of(t))
	return docscheck.Parse("docs/runbook.md", page).Anchors()
}

// logMetricOn names the log-based metric that extracts field (or counts,
// when field is "") lines with message logged by resources of resource
// type res.
func logMetricOn(t *testing.T, m monitored, message, field, res string) string {
	t.Helper()
	for typ, r := range m.metrics {
		f, _, _ := r.Str("filter")
		ve, set, _ := r.Str("value_extractor")
		terms := filterTerms(f)
		if terms["jsonPayload.message"] == message && terms["resource.type"] == res && ((field == "" && !set) || ve == "EXTRACT(jsonPayload."+field+")") {
			return typ
		}
	}
	t.Errorf("no log-based metric of %q lines of %s extracting %q", message, res, field)
	return ""
}

// Every alert of issue 13 exists in both environments, notifies the
// environment's channels, reads a metric that exists on resources the
// stack defines, and tells the on-call person where the runbook is.
func TestAlertPolicies(t *testing.T) {
	t.Parallel()
	anchors := runbookAnchors(t)
	ops := string(check(os.ReadFile(repo(t, "docs/operations.md"))).of(t))
	channels := cty.ListVal([]cty.Value{str("projects/acme-data/notificationChannels/123")})
	for _, e := range environments {
		in := env(t, e, map[string]cty.Value{"notification_channels": channels})
		m := monitoredOf(t, in)
		runbook := varString(t, in, "runbook_url")
		lag := in.Vars["freshness_lag_hours"].AsBigFloat()
		queued := parseDuration(t, varString(t, in, "planner_queued"))
		type cond struct {
			metric string
			terms  map[string]string
		}
		// Each policy's conditions, in order.
		want := map[string][]cond{
			"dead_letter":    {{"pubsub.googleapis.com/subscription/num_undelivered_messages", map[string]string{"resource.labels.subscription_id": m.deadLetter}}},
			"oldest_unacked": {{"pubsub.googleapis.com/subscription/oldest_unacked_message_age", map[string]string{"resource.labels.subscription_id": m.push}}},
			// The back-fill's backlog: it warns before PLANNER_QUEUED lets
			// the hourly planner push the waiting dates again.
			"backfill_backlog": {{"pubsub.googleapis.com/subscription/oldest_unacked_message_age", map[string]string{"resource.labels.subscription_id": m.pull}}},
			"planner_failed":   {{"run.googleapis.com/job/completed_execution_count", map[string]string{"resource.labels.job_name": m.planner, "metric.labels.result": "failed"}}},
			"loader_errors":    {{"run.googleapis.com/request_count", map[string]string{"resource.labels.service_name": m.loader, "metric.labels.response_code_class": "5xx"}}},
			// A date failing on the push service or on the back-fill pool.
			"date_failing": {
				{logMetricOn(t, m, "date failed", "", "cloud_run_revision"), map[string]string{"resource.type": "cloud_run_revision"}},
				{logMetricOn(t, m, "date failed", "", "cloud_run_worker_pool"), map[string]string{"resource.type": "cloud_run_worker_pool"}},
			},
			"freshness":        {{logMetricOn(t, m, "table status", "freshness_lag_s", "cloud_run_job"), nil}},
			"stale_dates":      {{logMetricOn(t, m, "finished date differs", "", "cloud_run_job"), nil}},
			"date_quarantined": {{logMetricOn(t, m, "date quarantined", "", "cloud_run_job"), map[string]string{"resource.type": "cloud_run_job"}}},
		}
		found := map[string]bool{}
		for _, p := range check(in.AllResources("google_monitoring_alert_policy")).of(t) {
			where := e + " " + p.ID()
			w, ok := want[p.Name]
			if !ok {
				t.Errorf("%s: an alert policy the checks do not know: add it to TestAlertPolicies", where)
				continue
			}
			found[p.Name] = true
			// docs/operations.md lists it by the name an incident shows.
			dn, _, _ := p.Str("display_name")
			if _, title, _ := strings.Cut(dn, ": "); !strings.Contains(ops, "\n| "+title+" |") {
				t.Errorf("%s: %q is not a row of docs/operations.md's alert table", where, dn)
			}
			nc, _, err := p.Attr("notification_channels")
			if err != nil || !nc.Equals(channels).True() {
				t.Errorf("%s: notification_channels %#v, want var.notification_channels (%v)", where, nc, err)
			}
			conds := check(p.Blocks("conditions")).of(t)
			if len(conds) != len(w) {
				t.Fatalf("%s: %d conditions, want %d", where, len(conds), len(w))
			}
			for i, c := range conds {
				ct := check(c.One("condition_threshold")).of(t)
				filter, _, _ := ct.Str("filter")
				terms := m.checkFilter(t, where, filter)
				if terms["metric.type"] != w[i].metric {
					t.Errorf("%s: condition %d reads %s, want %s", where, i, terms["metric.type"], w[i].metric)
				}
				for k, v := range w[i].terms {
					if terms[k] != v {
						t.Errorf("%s: condition %d's filter's %s is %q, want %q", where, i, k, terms[k], v)
					}
				}
				checkThreshold(t, where, p.Name, ct, m, lag, queued)
			}
			doc := check(p.One("documentation")).of(t)
			content, _, _ := doc.Str("content")
			link := regexp.MustCompile(regexp.QuoteMeta(runbook) + `#([a-z0-9_-]+)`).FindStringSubmatch(content)
			if link == nil {
				t.Errorf("%s: the documentation has no link into the runbook (%s#…):\n%s", where, runbook, content)
			} else if !anchors[link[1]] {
				t.Errorf("%s: links to #%s, which is no heading of docs/runbook.md (%v)", where, link[1], anchors)
			}
			if len(strings.Fields(content)) < 25 {
				t.Errorf("%s: the documentation does not say what to do:\n%s", where, content)
			}
		}
		for name := range want {
			if !found[name] {
				t.Errorf("%s: no alert policy %s", e, name)
			}
		}
	}
}

// The log-based metrics count the binaries' lines on the stack's own
// loader and planner, and are well-formed: every label is extracted, a
// distribution has a value and buckets.
func TestLogMetrics(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		in := env(t, e, nil)
		m := monitoredOf(t, in)
		if len(m.metrics) < 10 {
			t.Errorf("%s: only %d log-based metrics", e, len(m.metrics))
		}
		for typ, r := range m.metrics {
			where := e + " " + typ
			f, _, _ := r.Str("filter")
			terms := filterTerms(f)
			switch terms["resource.type"] {
			case "cloud_run_revision":
				if terms["resource.labels.service_name"] != m.loader {
					t.Errorf("%s: counts service %q, not the loader %q", where, terms["resource.labels.service_name"], m.loader)
				}
			case "cloud_run_worker_pool":
				if terms["resource.labels.worker_pool_name"] != m.pool {
					t.Errorf("%s: counts worker pool %q, not the back-fill pool %q", where, terms["resource.labels.worker_pool_name"], m.pool)
				}
			case "cloud_run_job":
				if terms["resource.labels.job_name"] != m.planner {
					t.Errorf("%s: counts job %q, not the planner %q", where, terms["resource.labels.job_name"], m.planner)
				}
			default:
				t.Errorf("%s: counts logs of resource.type %q", where, terms["resource.type"])
			}
			if terms["jsonPayload.message"] == "" {
				t.Errorf("%s: does not select lines by message", where)
			}
			md := check(r.One("metric_descriptor")).of(t)
			vt, _, _ := md.Str("value_type")
			_, hasValue, _ := r.Str("value_extractor")
			buckets := check(r.Blocks("bucket_options")).of(t)
			if (vt == "DISTRIBUTION") != hasValue || (vt == "DISTRIBUTION") != (len(buckets) == 1) {
				t.Errorf("%s: value_type %s, value_extractor set %v, %d bucket_options", where, vt, hasValue, len(buckets))
			}
			ex, _, _ := r.Attr("label_extractors")
			var labels []string
			for _, l := range check(md.Blocks("labels")).of(t) {
				k, _, _ := l.Str("key")
				labels = append(labels, k)
				if !ex.Type().IsObjectType() || !ex.Type().HasAttribute(k) {
					t.Errorf("%s: label %s has no extractor", where, k)
				}
			}
			if !contains(labels, "table") {
				t.Errorf("%s: no table label: nothing could be shown per table", where)
			}
			// The loader also runs on the back-fill pool: whatever is
			// counted from its lines on the service is counted there too.
			if terms["resource.type"] == "cloud_run_revision" {
				ve, _, _ := r.Str("value_extractor")
				field := strings.TrimSuffix(strings.TrimPrefix(ve, "EXTRACT(jsonPayload."), ")")
				logMetricOn(t, m, terms["jsonPayload.message"], field, "cloud_run_worker_pool")
			}
		}
	}
}

// The dashboard's JSON parses, every chart reads a metric that exists on
// the right resource, per table, and it shows progress, throughput, lag
// and errors.
func TestDashboard(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		in := env(t, e, nil)
		m := monitoredOf(t, in)
		d := single(t, in, "google_monitoring_dashboard")
		src, _, err := d.Str("dashboard_json")
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			DisplayName  string
			MosaicLayout struct {
				Columns int
				Tiles   []struct {
					XPos, YPos, Width, Height int
					Widget                    struct {
						Title   string
						XyChart struct {
							DataSets []struct {
								PlotType        string
								TimeSeriesQuery struct {
									TimeSeriesFilter struct {
										Filter      string
										Aggregation struct {
											AlignmentPeriod    string
											PerSeriesAligner   string
											CrossSeriesReducer string
											GroupByFields      []string
										}
									}
								}
							}
						}
					}
				}
			}
		}
		dec := json.NewDecoder(strings.NewReader(src))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&dash); err != nil {
			t.Fatalf("%s: dashboard_json: %v", e, err)
		}
		if len(dash.MosaicLayout.Tiles) == 0 {
			t.Fatalf("%s: the dashboard has no tiles", e)
		}
		var titles []string
		charted := map[string]bool{}
		for _, tile := range dash.MosaicLayout.Tiles {
			where := e + " chart " + tile.Widget.Title
			titles = append(titles, strings.ToLower(tile.Widget.Title))
			if tile.XPos+tile.Width > dash.MosaicLayout.Columns {
				t.Errorf("%s: wider than the %d columns", where, dash.MosaicLayout.Columns)
			}
			if len(tile.Widget.XyChart.DataSets) == 0 {
				t.Errorf("%s: no data", where)
			}
			for _, ds := range tile.Widget.XyChart.DataSets {
				f := ds.TimeSeriesQuery.TimeSeriesFilter
				terms := m.checkFilter(t, where, f.Filter)
				if _, builtin := builtinMetrics[terms["metric.type"]]; builtin {
					if !m.subscriptions[terms["resource.labels.subscription_id"]] || !contains(f.Aggregation.GroupByFields, "resource.label.subscription_id") {
						t.Errorf("%s: a Pub/Sub chart not on one of the stack's subscriptions, per subscription: %s, group by %v", where, f.Filter, f.Aggregation.GroupByFields)
					}
				} else if !contains(f.Aggregation.GroupByFields, "metric.label.table") {
					t.Errorf("%s: not per table: group by %v", where, f.Aggregation.GroupByFields)
				}
				charted[terms["metric.type"]+" "+terms["resource.labels.subscription_id"]] = true
				if f.Aggregation.PerSeriesAligner == "" || f.Aggregation.AlignmentPeriod == "" {
					t.Errorf("%s: no aligner or alignment period", where)
				}
			}
		}
		// The back-fill path shows: its backlog and what its pool stages.
		for _, want := range []string{
			"pubsub.googleapis.com/subscription/oldest_unacked_message_age " + m.pull,
			logMetricOn(t, m, "chunk staged", "", "cloud_run_worker_pool") + " ",
			logMetricOn(t, m, "date failed", "", "cloud_run_worker_pool") + " ",
		} {
			if !charted[want] {
				t.Errorf("%s: no chart of %s", e, want)
			}
		}
		for _, topic := range []string{"progress", "throughput", "lag", "error"} {
			ok := false
			for _, title := range titles {
				ok = ok || strings.Contains(title, topic)
			}
			if !ok {
				t.Errorf("%s: no chart about %s (%v)", e, topic, titles)
			}
		}
	}
}

// Ordering through values, not module-level depends_on: a module call that
// waits for a whole module defers every data source inside it to apply
// time, which made the scheduler's URI "known after apply" on every IAM
// change (issue 13).
func TestNoModuleDependsOnOverDataSources(t *testing.T) {
	t.Parallel()
	var hasData func(m *tfeval.Module) bool
	hasData = func(m *tfeval.Module) bool {
		if len(m.Data) > 0 {
			return true
		}
		for name, call := range m.Calls {
			src, _ := call.Body.Attributes["source"].Expr.Value(nil)
			c, err := tfeval.LoadModule(m.Dir + "/" + src.AsString())
			if err != nil {
				t.Fatalf("module %s: %v", name, err)
			}
			if hasData(c) {
				return true
			}
		}
		return false
	}
	for _, dir := range moduleDirs(t) {
		m := check(tfeval.LoadModule(dir)).of(t)
		for name, call := range m.Calls {
			if _, ok := call.Body.Attributes["depends_on"]; !ok {
				continue
			}
			src, _ := call.Body.Attributes["source"].Expr.Value(nil)
			if hasData(check(tfeval.LoadModule(dir + "/" + src.AsString())).of(t)) {
				t.Errorf("%s: module %q has depends_on and holds data sources: pass the values it must wait for instead", dir, name)
			}
		}
	}
}

// checkThreshold holds a condition's threshold to what it must mean: an
// error ratio has the same requests as denominator, freshness is
// freshness_lag_hours, the back-fill's backlog age fires before
// PLANNER_QUEUED has passed (then the hourly planner pushes its dates
// again) and not before half of it.
func checkThreshold(t *testing.T, where, policy string, ct tfeval.Scope, m monitored, lag *big.Float, queued time.Duration) {
	t.Helper()
	if den, ok, _ := ct.Str("denominator_filter"); ok {
		filter, _, _ := ct.Str("filter")
		terms := filterTerms(filter)
		dt := m.checkFilter(t, where+" denominator", den)
		if dt["resource.labels.service_name"] != terms["resource.labels.service_name"] || dt["metric.type"] != terms["metric.type"] {
			t.Errorf("%s: the ratio's denominator %q is not the same requests", where, den)
		}
	} else if policy == "loader_errors" {
		t.Errorf("%s: an error ratio needs a denominator_filter", where)
	}
	th, _, _ := ct.Num("threshold_value")
	switch policy {
	case "freshness":
		if th.Cmp(new(big.Float).Mul(lag, big.NewFloat(3600))) != 0 {
			t.Errorf("%s: threshold %s s, want freshness_lag_hours × 3600", where, th)
		}
	case "backfill_backlog":
		s, _ := th.Float64()
		if age := time.Duration(s * float64(time.Second)); age >= queued || age < queued/2 {
			t.Errorf("%s: threshold %s, want between PLANNER_QUEUED/2 and PLANNER_QUEUED (%s)", where, age, queued)
		}
	}
}

// parseDuration reads a Go duration Terraform passes to a binary.
func parseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%q is not a duration: %v", s, err)
	}
	return d
}
