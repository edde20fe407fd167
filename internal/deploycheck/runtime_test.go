package deploycheck

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/tfeval"
)

// runResource is a Cloud Run resource of a binary and its container.
type runResource struct {
	binary    string
	resource  tfeval.Resource
	template  tfeval.Scope // the revision (service) or task (job) template
	container tfeval.Scope
}

// cloudRun finds the loader service and the planner job of an environment.
func cloudRun(t *testing.T, in *tfeval.Instance) []runResource {
	t.Helper()
	svc := single(t, in, "google_cloud_run_v2_service")
	job := single(t, in, "google_cloud_run_v2_job")
	svcTmpl := check(svc.One("template")).of(t)
	jobTmpl := check(check(job.One("template")).of(t).One("template")).of(t)
	return []runResource{
		{binary: "loader", resource: svc, template: svcTmpl, container: check(svcTmpl.One("containers")).of(t)},
		{binary: "planner", resource: job, template: jobTmpl, container: check(jobTmpl.One("containers")).of(t)},
	}
}

// envOf is the environment a container is given: literal values, and the
// secret references of value_source blocks (as "secret:NAME@VERSION").
func envOf(t *testing.T, c tfeval.Scope) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range check(c.Blocks("env")).of(t) {
		name, ok, err := e.Str("name")
		if err != nil || !ok {
			t.Fatalf("%s: env without a name (%v)", e.Where, err)
		}
		if _, dup := out[name]; dup {
			t.Errorf("%s: %s is set twice", c.Where, name)
		}
		if val, ok, err := e.Str("value"); err != nil {
			t.Fatal(err)
		} else if ok {
			out[name] = val
			continue
		}
		vs := check(e.One("value_source")).of(t)
		ref := check(vs.One("secret_key_ref")).of(t)
		secret, _, err := ref.Str("secret")
		if err != nil {
			t.Fatal(err)
		}
		version, _, err := ref.Str("version")
		if err != nil {
			t.Fatal(err)
		}
		out[name] = "secret:" + secret + "@" + version
	}
	return out
}

// What Terraform sets on both Cloud Run resources is a configuration the
// binary's own loading and validation (internal/config) accept as deployed;
// every name set is one the binary reads; the variables it cannot start
// without are found by evaluation: leaving one out makes that validation
// fail.
func TestCloudRunEnvironmentMatchesConfiguration(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		in := env(t, e, nil)
		for _, rr := range cloudRun(t, in) {
			where := fmt.Sprintf("%s %s (%s)", e, rr.binary, rr.resource.ID())
			got := envOf(t, rr.container)
			known := map[string]config.Var{}
			for _, v := range binaryVars(t, rr.binary) {
				known[v.Name] = v
			}
			for name := range got {
				if _, ok := known[name]; !ok {
					t.Errorf("%s: %s is set but %s does not read it", where, name, rr.binary)
				}
			}
			// Each variable only the planner reads (PLANNER_*) is set from
			// Terraform, so that a deployment can tune it.
			if rr.binary == "planner" {
				common := map[string]bool{}
				for _, v := range config.Variables(&config.Common{}) {
					common[v.Name] = true
				}
				for name := range known {
					if _, ok := got[name]; !ok && !common[name] {
						t.Errorf("%s: %s is not set: Terraform has no variable for it", where, name)
					}
				}
			}
			// Cloud Run sets PORT itself and rejects a revision that sets it.
			if _, ok := got["PORT"]; ok {
				t.Errorf("%s: PORT is reserved by Cloud Run", where)
			}
			if _, ok := got["BQ_ENDPOINT"]; ok {
				t.Errorf("%s: BQ_ENDPOINT points at an emulator; never set it in a deployment", where)
			}
			// The password comes from Secret Manager, pinned; the DSN carries none.
			pw, ok := got["PG_PASSWORD"]
			if !ok || !regexp.MustCompile(`^secret:[^@]+@[1-9][0-9]*$`).MatchString(pw) {
				t.Errorf("%s: PG_PASSWORD = %q, want a secret reference with a pinned version", where, pw)
			}
			if strings.Contains(strings.ToLower(got["PG_DSN"]), "password") {
				t.Errorf("%s: PG_DSN carries a password", where)
			}
			lookup := map[string]string{}
			for k, v := range got {
				if strings.Contains(v, "<") {
					t.Errorf("%s: %s = %q is only known after apply", where, k, v)
				}
				lookup[k] = v
			}
			lookup["PG_PASSWORD"] = "from-secret-manager"
			lookup = withMountedCA(t, where, rr.template, rr.container, lookup)
			if err := validateAs(rr.binary, lookup); err != nil {
				t.Errorf("%s: the rendered environment does not validate:\n%v", where, err)
				continue
			}
			var required []string
			for name := range lookup {
				without := map[string]string{}
				for k, v := range lookup {
					if k != name {
						without[k] = v
					}
				}
				if validateAs(rr.binary, without) != nil {
					required = append(required, name)
				}
			}
			// The validation is not vacuous: these cannot be left out.
			for _, name := range []string{"PG_DSN", "BQ_PROJECT", "BQ_DATASET", "PUBSUB_TOPIC"} {
				if !contains(required, name) {
					t.Errorf("%s: the configuration validates without %s (required: %v)", where, name, required)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseSeconds reads Cloud Run's and Pub/Sub's "600s".
func parseSeconds(t *testing.T, where, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil || !strings.HasSuffix(s, "s") {
		t.Fatalf("%s: %q is not a duration in seconds", where, s)
	}
	return d
}

// Pub/Sub push gives a request at most 600 s before it counts as failed;
// the loader's request timeout matches the ack deadline and its work budget
// stays below it (docs/design.md, "Requests and the push deadline").
func TestAckDeadlineCoversTheLoaderBudget(t *testing.T) {
	t.Parallel()
	maxBudget := config.MaxLoaderBudget
	defaultBudget := defaultOf(t, "loader", "LOADER_BUDGET")
	if defaultBudget == "" {
		t.Fatal("config.Loader: LOADER_BUDGET has no default")
	}
	for _, e := range environments {
		in := env(t, e, nil)
		push := pushSubscription(t, in)
		ackN, ok, err := push.Num("ack_deadline_seconds")
		if err != nil || !ok {
			t.Fatalf("%s: push subscription without ack_deadline_seconds (%v)", e, err)
		}
		ackS, _ := ackN.Int64()
		ack := time.Duration(ackS) * time.Second
		if ack > 600*time.Second {
			t.Errorf("%s: ack deadline %s is above Pub/Sub's 600s", e, ack)
		}

		loader := cloudRun(t, in)[0]
		budgetS, ok := envOf(t, loader.container)["LOADER_BUDGET"]
		if !ok {
			budgetS = defaultBudget
		}
		budget, err := time.ParseDuration(budgetS)
		if err != nil {
			t.Fatalf("%s: LOADER_BUDGET %q: %v", e, budgetS, err)
		}
		if budget >= ack {
			t.Errorf("%s: LOADER_BUDGET %s is not below the ack deadline %s", e, budget, ack)
		}
		if budget > maxBudget {
			t.Errorf("%s: LOADER_BUDGET %s is above the loader's MaxBudget %s", e, budget, maxBudget)
		}
		timeout, ok, err := loader.template.Str("timeout")
		if err != nil || !ok {
			t.Fatalf("%s: loader has no request timeout (%v)", e, err)
		}
		if d := parseSeconds(t, e+" loader timeout", timeout); d != ack {
			t.Errorf("%s: loader request timeout %s, ack deadline %s: they must be equal", e, d, ack)
		}
	}
}

// pushSubscription is the one push subscription, which must deliver to the
// loader service with an OIDC token.
func pushSubscription(t *testing.T, in *tfeval.Instance) tfeval.Resource {
	t.Helper()
	var push []tfeval.Resource
	for _, s := range check(in.AllResources("google_pubsub_subscription")).of(t) {
		if len(check(s.Blocks("push_config")).of(t)) > 0 {
			push = append(push, s)
		}
	}
	if len(push) != 1 {
		t.Fatalf("%s: want one push subscription, found %d", in.Path, len(push))
	}
	loader := single(t, in, "google_cloud_run_v2_service")
	uri := "<" + loader.ID() + ".uri>"
	pc := check(push[0].One("push_config")).of(t)
	if ep, _, err := pc.Str("push_endpoint"); err != nil || ep != uri {
		t.Errorf("%s: push endpoint %q, want the loader's URL %s (%v)", in.Path, ep, uri, err)
	}
	oidc := check(pc.One("oidc_token")).of(t)
	if aud, _, err := oidc.Str("audience"); err != nil || aud != uri {
		t.Errorf("%s: OIDC audience %q, want the loader's URL %s (%v)", in.Path, aud, uri, err)
	}
	return push[0]
}

// Failed deliveries retry with exponential backoff, then go to a
// dead-letter topic that has a subscription (without one they are dropped);
// Pub/Sub's service agent can forward them; no subscription expires.
func TestDeadLetteringIsComplete(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		in := env(t, e, nil)
		push := pushSubscription(t, in)
		rp := check(push.One("retry_policy")).of(t)
		minB, _, err1 := rp.Str("minimum_backoff")
		maxB, _, err2 := rp.Str("maximum_backoff")
		if err1 != nil || err2 != nil || minB == "" || maxB == "" ||
			parseSeconds(t, e, minB) >= parseSeconds(t, e, maxB) {
			t.Errorf("%s: retry_policy %q..%q is not an exponential backoff", e, minB, maxB)
		}
		dlp := check(push.One("dead_letter_policy")).of(t)
		attempts, ok, err := dlp.Num("max_delivery_attempts")
		if err != nil || !ok {
			t.Fatalf("%s: no max_delivery_attempts (%v)", e, err)
		}
		if n, _ := attempts.Int64(); n < 5 || n > 100 {
			t.Errorf("%s: max_delivery_attempts %d outside Pub/Sub's 5..100", e, n)
		}
		dlTopic, ok, err := dlp.Str("dead_letter_topic")
		if err != nil || !ok {
			t.Fatalf("%s: no dead_letter_topic (%v)", e, err)
		}
		srcTopic, _, _ := push.Str("topic")
		if dlTopic == srcTopic {
			t.Errorf("%s: the dead-letter topic is the subscription's own topic", e)
		}
		var onDL []tfeval.Resource
		for _, s := range check(in.AllResources("google_pubsub_subscription")).of(t) {
			topic, _, err := s.Str("topic")
			if err != nil {
				t.Fatal(err)
			}
			if topic == dlTopic {
				onDL = append(onDL, s)
			}
		}
		if len(onDL) == 0 {
			t.Errorf("%s: the dead-letter topic %s has no subscription: dead letters would be dropped", e, dlTopic)
		}
		for _, s := range check(in.AllResources("google_pubsub_subscription")).of(t) {
			ep := check(s.Blocks("expiration_policy")).of(t)
			if len(ep) != 1 {
				t.Errorf("%s: no expiration_policy: it expires after 31 idle days", s.ID())
				continue
			}
			if ttl, ok, err := ep[0].Str("ttl"); err != nil || !ok || ttl != "" {
				t.Errorf("%s: expiration_policy.ttl = %q, want \"\" (never)", s.ID(), ttl)
			}
		}
		// Pub/Sub's service agent: publisher on the dead-letter topic,
		// subscriber on the push subscription.
		grants := iamGrants(t, in)
		dlID := symbolID(t, dlTopic)
		var pub, sub bool
		for _, g := range grants {
			if g.principal != pubsubAgent {
				continue
			}
			pub = pub || (g.role == "roles/pubsub.publisher" && g.target == dlID)
			sub = sub || (g.role == "roles/pubsub.subscriber" && g.target == push.ID())
		}
		if !pub {
			t.Errorf("%s: Pub/Sub's service agent cannot publish to the dead-letter topic %s", e, dlID)
		}
		if !sub {
			t.Errorf("%s: Pub/Sub's service agent is not subscriber on %s", e, push.ID())
		}
	}
}

// symbolID turns a placeholder such as <dev.pubsub/google_pubsub_topic.dead_letter.id>
// into the resource's ID, dev.pubsub/google_pubsub_topic.dead_letter.
func symbolID(t *testing.T, s string) string {
	t.Helper()
	m := tfeval.SymbolRE.FindStringSubmatch(s)
	if m == nil || m[0] != s {
		t.Fatalf("%q does not refer to a resource", s)
	}
	return m[1] + "/" + m[2] + "." + m[3]
}

// The planner runs on Cloud Scheduler's HTTP target for the Cloud Run Admin
// API's jobs:run, with an OAuth token
// (https://cloud.google.com/run/docs/execute/jobs-on-schedule).
func TestSchedulerRunsThePlannerJob(t *testing.T) {
	t.Parallel()
	uriRE := regexp.MustCompile(`^https://([a-z0-9-]+)-run\.googleapis\.com/apis/run\.googleapis\.com/v1/namespaces/(.+)/jobs/([^/:]+):run$`)
	for _, e := range environments {
		in := env(t, e, nil)
		region := varString(t, in, "region")
		sched := single(t, in, "google_cloud_scheduler_job")
		job := single(t, in, "google_cloud_run_v2_job")
		jobName, _, err := job.Str("name")
		if err != nil {
			t.Fatal(err)
		}
		schedule, _, err := sched.Str("schedule")
		if err != nil || schedule != varString(t, in, "planner_schedule") {
			t.Errorf("%s: schedule %q is not var.planner_schedule (%v)", e, schedule, err)
		}
		ht := check(sched.One("http_target")).of(t)
		uri, _, err := ht.Str("uri")
		if err != nil {
			t.Fatal(err)
		}
		m := uriRE.FindStringSubmatch(uri)
		if m == nil {
			t.Fatalf("%s: scheduler URI %q is not a jobs:run call", e, uri)
		}
		if m[1] != region {
			t.Errorf("%s: scheduler calls region %s, the job is in %s", e, m[1], region)
		}
		if !regexp.MustCompile(`^<[a-z0-9_.]+/data\.google_project\.[a-z0-9_]+\.number>$`).MatchString(m[2]) {
			t.Errorf("%s: namespace %q is not the project number", e, m[2])
		}
		if m[3] != jobName {
			t.Errorf("%s: scheduler runs job %q, the planner job is %q", e, m[3], jobName)
		}
		if method, _, _ := ht.Str("http_method"); method != "POST" {
			t.Errorf("%s: http_method %q, want POST", e, method)
		}
		if len(check(ht.Blocks("oidc_token")).of(t)) != 0 || len(check(ht.Blocks("oauth_token")).of(t)) != 1 {
			t.Errorf("%s: a Google API is called with an OAuth token, not OIDC", e)
		}
	}
}

// The source is reached the way the variables say: the Cloud SQL connector's
// socket (dev's example) or a host over VPC egress (prod's example).
func TestDatabaseConnectivity(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		in := env(t, e, nil)
		db := in.Vars["database"]
		cloudSQL := db.GetAttr("cloud_sql_instance").AsString()
		for _, rr := range cloudRun(t, in) {
			where := e + " " + rr.binary
			dsn := envOf(t, rr.container)["PG_DSN"]
			volumes := check(rr.template.Blocks("volumes")).of(t)
			mounts := check(rr.container.Blocks("volume_mounts")).of(t)
			vpc := check(rr.template.Blocks("vpc_access")).of(t)
			if cloudSQL != "" {
				if !strings.Contains(dsn, "host=/cloudsql/"+cloudSQL+" ") {
					t.Errorf("%s: PG_DSN %q does not use the Cloud SQL socket of %s", where, dsn, cloudSQL)
				}
				if len(volumes) != 1 || len(mounts) != 1 {
					t.Fatalf("%s: want one Cloud SQL volume and mount, found %d and %d", where, len(volumes), len(mounts))
				}
				inst := check(volumes[0].One("cloud_sql_instance")).of(t)
				v, _, err := inst.Attr("instances")
				if err != nil || v.LengthInt() != 1 || v.Index(cty.NumberIntVal(0)).AsString() != cloudSQL {
					t.Errorf("%s: Cloud SQL volume mounts %#v, want %s", where, v, cloudSQL)
				}
				if p, _, _ := mounts[0].Str("mount_path"); p != "/cloudsql" {
					t.Errorf("%s: Cloud SQL mounted at %q", where, p)
				}
			} else {
				host := db.GetAttr("host").AsString()
				cloudSQLVolumes := 0
				for _, v := range volumes {
					cloudSQLVolumes += len(check(v.Blocks("cloud_sql_instance")).of(t))
				}
				if !strings.HasPrefix(dsn, "host="+host+" ") || cloudSQLVolumes != 0 {
					t.Errorf("%s: PG_DSN %q / %d Cloud SQL volumes: want host %s and no Cloud SQL volume", where, dsn, cloudSQLVolumes, host)
				}
				if !in.Vars["vpc_egress"].IsNull() && len(vpc) != 1 {
					t.Errorf("%s: vpc_egress is set but the template has no vpc_access", where)
				}
			}
		}
	}
}

// The loader is sized for 250,000-row chunks (measured peak RSS < 300 MB)
// and its instance count is the fan-out knob.
func TestLoaderSizing(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		in := env(t, e, nil)
		loader := cloudRun(t, in)[0]
		res := check(loader.container.One("resources")).of(t)
		limits, _, err := res.Attr("limits")
		if err != nil {
			t.Fatal(err)
		}
		mem := limits.GetAttr("memory").AsString()
		m := regexp.MustCompile(`^([0-9]+)(Mi|Gi)$`).FindStringSubmatch(mem)
		if m == nil {
			t.Fatalf("%s: loader memory %q", e, mem)
		}
		mib, _ := strconv.Atoi(m[1])
		if m[2] == "Gi" {
			mib *= 1024
		}
		if mib < 512 {
			t.Errorf("%s: loader memory %s is too little for 250,000-row chunks", e, mem)
		}
		scaling := check(loader.template.One("scaling")).of(t)
		n, _, err := scaling.Num("max_instance_count")
		if err != nil {
			t.Fatal(err)
		}
		want := in.Vars["loader_max_instances"].AsBigFloat()
		if n.Cmp(want) != 0 {
			t.Errorf("%s: max_instance_count %s, want var.loader_max_instances %s", e, n, want)
		}
	}
}

// Outputs give what a person needs and never a secret's value.
func TestOutputs(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		m := check(tfeval.LoadModule(repo(t, "terraform", "envs", e))).of(t)
		var names []string
		for name := range m.Outputs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, want := range []string{"loader_url", "dates_topic", "bigquery_datasets", "dead_letter_subscription"} {
			if !contains(names, want) {
				t.Errorf("%s: no output %s (have %v)", e, want, names)
			}
		}
		in := env(t, e, nil)
		for _, name := range names {
			v := check(in.Output(name)).of(t)
			if s := v.GoString(); strings.Contains(s, "secret_data") || strings.Contains(s, "google_secret_manager_secret_version") {
				t.Errorf("%s: output %s exposes a secret's value: %s", e, name, s)
			}
		}
	}
}
