package deploycheck

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgbq/pgbq/internal/config"
)

// runResource is a Cloud Run resource of a binary and its container.
type runResource struct {
	binary    string
	resource  resource
	template  scope // the revision (service) or task (job) template
	container scope
}

// cloudRun finds the loader service and the planner job of an environment.
func cloudRun(t *testing.T, in *instance) []runResource {
	t.Helper()
	svc := single(t, in, "google_cloud_run_v2_service")
	job := single(t, in, "google_cloud_run_v2_job")
	svcTmpl := check(svc.one("template")).of(t)
	jobTmpl := check(check(job.one("template")).of(t).one("template")).of(t)
	return []runResource{
		{binary: "loader", resource: svc, template: svcTmpl, container: check(svcTmpl.one("containers")).of(t)},
		{binary: "planner", resource: job, template: jobTmpl, container: check(jobTmpl.one("containers")).of(t)},
	}
}

// envOf is the environment a container is given: literal values, and the
// secret references of value_source blocks (as "secret:NAME@VERSION").
func envOf(t *testing.T, c scope) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range check(c.blocks("env")).of(t) {
		name, ok, err := e.str("name")
		if err != nil || !ok {
			t.Fatalf("%s: env without a name (%v)", e.where, err)
		}
		if _, dup := out[name]; dup {
			t.Errorf("%s: %s is set twice", c.where, name)
		}
		if val, ok, err := e.str("value"); err != nil {
			t.Fatal(err)
		} else if ok {
			out[name] = val
			continue
		}
		vs := check(e.one("value_source")).of(t)
		ref := check(vs.one("secret_key_ref")).of(t)
		secret, _, err := ref.str("secret")
		if err != nil {
			t.Fatal(err)
		}
		version, _, err := ref.str("version")
		if err != nil {
			t.Fatal(err)
		}
		out[name] = "secret:" + secret + "@" + version
	}
	return out
}

// Every variable the binaries cannot start without is set on both Cloud Run
// resources, every name set is one the binary reads, and the values make a
// configuration the binaries' own validation accepts.
func TestCloudRunEnvironmentMatchesConfiguration(t *testing.T) {
	t.Parallel()
	required := requiredVars(t)
	// The derivation must find the obvious ones, or it is broken.
	for _, name := range []string{"PG_DSN", "BQ_PROJECT", "BQ_DATASET", "PUBSUB_TOPIC", "SYNC_TABLE"} {
		if !contains(required, name) {
			t.Fatalf("required variables derived from config.Validate = %v, missing %s", required, name)
		}
	}
	for _, e := range environments {
		in := env(t, e, nil)
		for _, rr := range cloudRun(t, in) {
			where := fmt.Sprintf("%s %s (%s)", e, rr.binary, rr.resource.ID())
			got := envOf(t, rr.container)
			known := map[string]config.Var{}
			for _, v := range binaryVars(t, rr.binary) {
				known[v.Name] = v
			}
			for _, name := range required {
				if _, ok := got[name]; !ok {
					t.Errorf("%s: required %s is not set", where, name)
				}
			}
			for name := range got {
				if _, ok := known[name]; !ok {
					t.Errorf("%s: %s is set but %s does not read it", where, name, rr.binary)
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
			// What Terraform renders must be a valid configuration.
			lookup := map[string]string{}
			for k, v := range got {
				if strings.Contains(v, "<") {
					t.Errorf("%s: %s = %q is only known after apply", where, k, v)
				}
				lookup[k] = v
			}
			lookup["PG_PASSWORD"] = "from-secret-manager"
			var c config.Common
			if err := config.Load(context.Background(), &c, envconfig.MapLookuper(lookup)); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			c.Normalize()
			if err := c.Validate(true, false); err != nil {
				t.Errorf("%s: the rendered environment does not validate:\n%v", where, err)
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
// stays below it (DESIGN.md, "Long dates and Pub/Sub push").
func TestAckDeadlineCoversTheLoaderBudget(t *testing.T) {
	t.Parallel()
	loaderMain := repo(t, "loader", "main.go")
	maxBudget, err := goDurationConst(loaderMain, "MaxBudget")
	if err != nil {
		t.Fatal(err)
	}
	var defaultBudget string
	for _, v := range binaryVars(t, "loader") {
		if v.Name == "LOADER_BUDGET" {
			defaultBudget = v.Default
		}
	}
	if defaultBudget == "" {
		t.Fatal("loader/main.go: LOADER_BUDGET has no default")
	}
	for _, e := range environments {
		in := env(t, e, nil)
		push := pushSubscription(t, in)
		ackN, ok, err := push.num("ack_deadline_seconds")
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
		timeout, ok, err := loader.template.str("timeout")
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
func pushSubscription(t *testing.T, in *instance) resource {
	t.Helper()
	var push []resource
	for _, s := range check(in.allResources("google_pubsub_subscription")).of(t) {
		if len(check(s.blocks("push_config")).of(t)) > 0 {
			push = append(push, s)
		}
	}
	if len(push) != 1 {
		t.Fatalf("%s: want one push subscription, found %d", in.path, len(push))
	}
	loader := single(t, in, "google_cloud_run_v2_service")
	uri := "<" + loader.ID() + ".uri>"
	pc := check(push[0].one("push_config")).of(t)
	if ep, _, err := pc.str("push_endpoint"); err != nil || ep != uri {
		t.Errorf("%s: push endpoint %q, want the loader's URL %s (%v)", in.path, ep, uri, err)
	}
	oidc := check(pc.one("oidc_token")).of(t)
	if aud, _, err := oidc.str("audience"); err != nil || aud != uri {
		t.Errorf("%s: OIDC audience %q, want the loader's URL %s (%v)", in.path, aud, uri, err)
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
		rp := check(push.one("retry_policy")).of(t)
		minB, _, err1 := rp.str("minimum_backoff")
		maxB, _, err2 := rp.str("maximum_backoff")
		if err1 != nil || err2 != nil || minB == "" || maxB == "" ||
			parseSeconds(t, e, minB) >= parseSeconds(t, e, maxB) {
			t.Errorf("%s: retry_policy %q..%q is not an exponential backoff", e, minB, maxB)
		}
		dlp := check(push.one("dead_letter_policy")).of(t)
		attempts, ok, err := dlp.num("max_delivery_attempts")
		if err != nil || !ok {
			t.Fatalf("%s: no max_delivery_attempts (%v)", e, err)
		}
		if n, _ := attempts.Int64(); n < 5 || n > 100 {
			t.Errorf("%s: max_delivery_attempts %d outside Pub/Sub's 5..100", e, n)
		}
		dlTopic, ok, err := dlp.str("dead_letter_topic")
		if err != nil || !ok {
			t.Fatalf("%s: no dead_letter_topic (%v)", e, err)
		}
		srcTopic, _, _ := push.str("topic")
		if dlTopic == srcTopic {
			t.Errorf("%s: the dead-letter topic is the subscription's own topic", e)
		}
		var onDL []resource
		for _, s := range check(in.allResources("google_pubsub_subscription")).of(t) {
			topic, _, err := s.str("topic")
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
		for _, s := range check(in.allResources("google_pubsub_subscription")).of(t) {
			ep := check(s.blocks("expiration_policy")).of(t)
			if len(ep) != 1 {
				t.Errorf("%s: no expiration_policy: it expires after 31 idle days", s.ID())
				continue
			}
			if ttl, ok, err := ep[0].str("ttl"); err != nil || !ok || ttl != "" {
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
	m := symbolRE.FindStringSubmatch(s)
	if m == nil || m[0] != s {
		t.Fatalf("%q does not refer to a resource", s)
	}
	return m[1] + "/" + m[2] + "." + m[3]
}

// The planner runs on Cloud Scheduler's HTTP target for the Cloud Run Admin
// API's jobs:run, with an OAuth token (DESIGN.md, "Google Cloud facts").
func TestSchedulerRunsThePlannerJob(t *testing.T) {
	t.Parallel()
	uriRE := regexp.MustCompile(`^https://([a-z0-9-]+)-run\.googleapis\.com/apis/run\.googleapis\.com/v1/namespaces/(.+)/jobs/([^/:]+):run$`)
	for _, e := range environments {
		in := env(t, e, nil)
		region := varString(t, in, "region")
		sched := single(t, in, "google_cloud_scheduler_job")
		job := single(t, in, "google_cloud_run_v2_job")
		jobName, _, err := job.str("name")
		if err != nil {
			t.Fatal(err)
		}
		schedule, _, err := sched.str("schedule")
		if err != nil || schedule != varString(t, in, "planner_schedule") {
			t.Errorf("%s: schedule %q is not var.planner_schedule (%v)", e, schedule, err)
		}
		ht := check(sched.one("http_target")).of(t)
		uri, _, err := ht.str("uri")
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
		if method, _, _ := ht.str("http_method"); method != "POST" {
			t.Errorf("%s: http_method %q, want POST", e, method)
		}
		if len(check(ht.blocks("oidc_token")).of(t)) != 0 || len(check(ht.blocks("oauth_token")).of(t)) != 1 {
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
		db := in.vars["database"]
		cloudSQL := db.GetAttr("cloud_sql_instance").AsString()
		for _, rr := range cloudRun(t, in) {
			where := e + " " + rr.binary
			dsn := envOf(t, rr.container)["PG_DSN"]
			volumes := check(rr.template.blocks("volumes")).of(t)
			mounts := check(rr.container.blocks("volume_mounts")).of(t)
			vpc := check(rr.template.blocks("vpc_access")).of(t)
			if cloudSQL != "" {
				if !strings.Contains(dsn, "host=/cloudsql/"+cloudSQL+" ") {
					t.Errorf("%s: PG_DSN %q does not use the Cloud SQL socket of %s", where, dsn, cloudSQL)
				}
				if len(volumes) != 1 || len(mounts) != 1 {
					t.Fatalf("%s: want one Cloud SQL volume and mount, found %d and %d", where, len(volumes), len(mounts))
				}
				inst := check(volumes[0].one("cloud_sql_instance")).of(t)
				v, _, err := inst.attr("instances")
				if err != nil || v.LengthInt() != 1 || v.Index(cty.NumberIntVal(0)).AsString() != cloudSQL {
					t.Errorf("%s: Cloud SQL volume mounts %#v, want %s", where, v, cloudSQL)
				}
				if p, _, _ := mounts[0].str("mount_path"); p != "/cloudsql" {
					t.Errorf("%s: Cloud SQL mounted at %q", where, p)
				}
			} else {
				host := db.GetAttr("host").AsString()
				if !strings.HasPrefix(dsn, "host="+host+" ") || len(volumes) != 0 {
					t.Errorf("%s: PG_DSN %q / %d volumes: want host %s and no Cloud SQL volume", where, dsn, len(volumes), host)
				}
				if !in.vars["vpc_egress"].IsNull() && len(vpc) != 1 {
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
		res := check(loader.container.one("resources")).of(t)
		limits, _, err := res.attr("limits")
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
		scaling := check(loader.template.one("scaling")).of(t)
		n, _, err := scaling.num("max_instance_count")
		if err != nil {
			t.Fatal(err)
		}
		want := in.vars["loader_max_instances"].AsBigFloat()
		if n.Cmp(want) != 0 {
			t.Errorf("%s: max_instance_count %s, want var.loader_max_instances %s", e, n, want)
		}
	}
}

// Outputs give what a person needs and never a secret's value.
func TestOutputs(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		m := check(loadModule(repo(t, "terraform", "envs", e))).of(t)
		var names []string
		for name := range m.outputs {
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
			v := check(in.output(name)).of(t)
			if s := v.GoString(); strings.Contains(s, "secret_data") || strings.Contains(s, "google_secret_manager_secret_version") {
				t.Errorf("%s: output %s exposes a secret's value: %s", e, name, s)
			}
		}
	}
}
