package deploycheck

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/pgbq/pgbq/internal/tfeval"
)

// pubsubAgent names Pub/Sub's service agent among the principals.
const pubsubAgent = "pubsub-agent"

// allowed is one grant the least-privilege table permits: a role on a
// target, a resource named as in the modules ("google_pubsub_topic.dates")
// or "project". optional grants depend on the configuration (Cloud SQL, an
// old project); the others must exist.
type allowed struct {
	role, target string
	optional     bool
}

// leastPrivilege is the least-privilege table of the runtime identities
// (docs/security.md), extended with what the other
// components need: the push identity and the scheduler only invoke, the
// deployer only pushes images, rolls revisions and reads whether the test
// build of its commit passed, the tester only writes its logs, Pub/Sub's
// agent only dead-letters. Every runtime identity reads PostgreSQL (its
// password, the CA that verifies the server and, on Cloud SQL, the
// connector, conditioned on the instance: TestCloudSQLGrantOnTheInstance).
// The push service and the back-fill pool are two identities (issue 28):
// only the pool pulls the back-fill subscription. The planner may create
// the destination table and sync_control when it starts before any
// loader; its operator commands (resync, pause, quarantine) append to
// sync_control and `verify --repair` rebuilds dates through the staging
// dataset. Dataset roles are the datasets' access entries (WRITER is
// roles/bigquery.dataEditor).
var leastPrivilege = map[string][]allowed{
	"loader": {
		{role: "custom:publish_fence", target: "project"},
		{role: "roles/bigquery.jobUser", target: "project"},
		{role: "roles/bigquery.dataEditor", target: "google_bigquery_dataset.destination"},
		{role: "roles/bigquery.dataEditor", target: "google_bigquery_dataset.staging"},
		{role: "roles/bigquery.dataEditor", target: "google_bigquery_dataset.state"},
		{role: "roles/secretmanager.secretAccessor", target: "google_secret_manager_secret.pg_password"},
		{role: "roles/secretmanager.secretAccessor", target: "google_secret_manager_secret.pg_ca"},
		{role: "roles/cloudsql.client", target: "project", optional: true},
		{role: "roles/pubsub.publisher", target: "google_pubsub_topic.dates"},
	},
	"backfill": {
		{role: "custom:publish_fence", target: "project"},
		{role: "roles/bigquery.jobUser", target: "project"},
		{role: "roles/bigquery.dataEditor", target: "google_bigquery_dataset.destination"},
		{role: "roles/bigquery.dataEditor", target: "google_bigquery_dataset.staging"},
		{role: "roles/bigquery.dataEditor", target: "google_bigquery_dataset.state"},
		{role: "roles/secretmanager.secretAccessor", target: "google_secret_manager_secret.pg_password"},
		{role: "roles/secretmanager.secretAccessor", target: "google_secret_manager_secret.pg_ca"},
		{role: "roles/cloudsql.client", target: "project", optional: true},
		// It pulls, and would publish a continuation to the back-fill topic.
		{role: "roles/pubsub.subscriber", target: "google_pubsub_subscription.backfill"},
		{role: "roles/pubsub.publisher", target: "google_pubsub_topic.backfill"},
	},
	"planner": {
		{role: "custom:publish_fence", target: "project"},
		{role: "roles/bigquery.jobUser", target: "project"},
		{role: "roles/bigquery.dataEditor", target: "google_bigquery_dataset.destination"},
		{role: "roles/bigquery.dataEditor", target: "google_bigquery_dataset.state"},
		// verify --repair rebuilds dates through staging tables.
		{role: "roles/bigquery.dataEditor", target: "google_bigquery_dataset.staging"},
		{role: "roles/secretmanager.secretAccessor", target: "google_secret_manager_secret.pg_password"},
		{role: "roles/secretmanager.secretAccessor", target: "google_secret_manager_secret.pg_ca"},
		{role: "roles/cloudsql.client", target: "project", optional: true},
		{role: "roles/pubsub.publisher", target: "google_pubsub_topic.dates"},
		{role: "roles/pubsub.publisher", target: "google_pubsub_topic.backfill"},
	},
	"push": {
		{role: "roles/run.invoker", target: "google_cloud_run_v2_service.loader"},
	},
	"scheduler": {
		{role: "roles/run.invoker", target: "google_cloud_run_v2_job.planner"},
	},
	"deployer": {
		{role: "roles/artifactregistry.writer", target: "google_artifact_registry_repository.images"},
		{role: "roles/logging.logWriter", target: "project"},
		{role: "roles/iam.serviceAccountUser", target: "google_service_account.loader"},
		{role: "roles/iam.serviceAccountUser", target: "google_service_account.backfill"},
		{role: "roles/iam.serviceAccountUser", target: "google_service_account.planner"},
		{role: "roles/cloudbuild.builds.viewer", target: "project"},
		{role: "roles/run.developer", target: "google_cloud_run_v2_service.loader"},
		{role: "roles/run.developer", target: "google_cloud_run_v2_job.planner"},
		{role: "roles/run.developer", target: "google_cloud_run_v2_worker_pool.loader"},
	},
	"tester": {
		{role: "roles/logging.logWriter", target: "project"},
	},
	pubsubAgent: {
		{role: "roles/pubsub.publisher", target: "google_pubsub_topic.dead_letter"},
		{role: "roles/pubsub.subscriber", target: "google_pubsub_subscription.push"},
		{role: "roles/pubsub.subscriber", target: "google_pubsub_subscription.backfill"},
		{role: "roles/iam.serviceAccountTokenCreator", target: "google_service_account.push", optional: true},
	},
}

// iamTarget is the argument of each IAM member resource type that names
// what the role is granted on.
var iamTarget = map[string]string{
	"google_project_iam_member":                      "project",
	"google_bigquery_dataset_iam_member":             "dataset_id",
	"google_pubsub_topic_iam_member":                 "topic",
	"google_pubsub_subscription_iam_member":          "subscription",
	"google_secret_manager_secret_iam_member":        "secret_id",
	"google_artifact_registry_repository_iam_member": "repository",
	"google_service_account_iam_member":              "service_account_id",
	"google_cloud_run_v2_service_iam_member":         "name",
	"google_cloud_run_v2_job_iam_member":             "name",
	"google_cloud_run_v2_worker_pool_iam_member":     "name",
}

// grant is one evaluated IAM member resource.
type grant struct {
	principal string // a google_service_account's name in the iam module, or pubsubAgent
	role      string
	target    string // tfeval.Resource ID (dev.pubsub/google_pubsub_topic.dates) or "project"
	where     string
}

var (
	customRoleRE = regexp.MustCompile(`^<[a-z0-9_.]+/google_project_iam_custom_role\.([a-z0-9_]+)\.(?:id|name)>$`)
	saMemberRE   = regexp.MustCompile(`^(?:serviceAccount:)?<[a-z0-9_.]+/google_service_account\.([a-z0-9_]+)\.(?:email|member)>$`)
	agentRE      = regexp.MustCompile(`^serviceAccount:service-<[a-z0-9_.]+/data\.google_project\.[a-z0-9_]+\.number>@gcp-sa-pubsub\.iam\.gserviceaccount\.com$`)
)

// iamGrants evaluates every IAM resource of an environment. Authoritative
// bindings and policies, unknown IAM resource types, members that are not
// pgbq's own identities (allUsers included) and targets that cannot be
// resolved fail the test.
func iamGrants(t *testing.T, in *tfeval.Instance) []grant {
	t.Helper()
	all := check(in.AllResources("")).of(t)
	// What each resource is called, to resolve targets given by name or id.
	byName := map[string][]string{}
	for _, r := range all {
		if r.Key != "" {
			continue
		}
		for _, a := range []string{"name", "dataset_id", "secret_id", "repository_id"} {
			if v, ok, err := r.Str(a); err == nil && ok && !strings.Contains(v, "<") {
				byName[r.Type+"\x00"+v] = append(byName[r.Type+"\x00"+v], r.ID())
			}
		}
	}
	var out []grant
	for _, r := range all {
		if r.Type == "google_bigquery_dataset" {
			out = append(out, datasetGrants(t, r)...)
			continue
		}
		if r.Type == "google_project_iam_custom_role" {
			customRole(t, r)
			continue
		}
		if !strings.Contains(r.Type, "_iam_") {
			continue
		}
		if !strings.HasSuffix(r.Type, "_iam_member") {
			t.Errorf("%s: %s is authoritative: it would remove grants made outside pgbq; use *_iam_member", r.Where, r.Type)
			continue
		}
		targetArg, known := iamTarget[r.Type]
		if !known {
			t.Errorf("%s: IAM tfeval.Resource type %s is not in the least-privilege table", r.Where, r.Type)
			continue
		}
		role, _, err := r.Str("role")
		if err != nil {
			t.Fatal(err)
		}
		member, _, err := r.Str("member")
		if err != nil {
			t.Fatal(err)
		}
		if m := customRoleRE.FindStringSubmatch(role); m != nil {
			role = "custom:" + m[1]
		}
		g := grant{role: role, where: r.Where}
		switch m := saMemberRE.FindStringSubmatch(member); {
		case m != nil:
			g.principal = m[1]
		case agentRE.MatchString(member):
			g.principal = pubsubAgent
		default:
			t.Errorf("%s: member %q is neither one of pgbq's service accounts nor Pub/Sub's agent", r.Where, member)
			continue
		}
		if targetArg == "project" {
			g.target = "project"
		} else {
			v, ok, err := r.Str(targetArg)
			if err != nil || !ok {
				t.Fatalf("%s: %s: %v", r.Where, targetArg, err)
			}
			typ := strings.TrimSuffix(r.Type, "_iam_member")
			if m := tfeval.SymbolRE.FindStringSubmatch(v); m != nil && m[0] == v {
				if m[2] != typ {
					t.Errorf("%s: %s refers to a %s, not a %s", r.Where, targetArg, m[2], typ)
					continue
				}
				g.target = m[1] + "/" + m[2] + "." + m[3]
			} else if ids := byName[typ+"\x00"+v]; len(ids) == 1 {
				g.target = ids[0]
			} else {
				t.Errorf("%s: %s %q names %d %s resources, want one", r.Where, targetArg, v, len(ids), typ)
				continue
			}
		}
		out = append(out, g)
	}
	return out
}

// legacyDatasetRoles are the dataset access roles in the form the API
// returns them, and the IAM roles they are
// (https://cloud.google.com/bigquery/docs/access-control-basic-roles).
var legacyDatasetRoles = map[string]string{
	"READER": "roles/bigquery.dataViewer",
	"WRITER": "roles/bigquery.dataEditor",
	"OWNER":  "roles/bigquery.dataOwner",
}

// datasetGrants are a dataset's access entries as grants to pgbq's service
// accounts. A dataset without access entries (BigQuery's defaults: every
// project viewer reads it), an entry for a special group other than the
// project owners, and an entry for an identity that is neither one of
// pgbq's service accounts nor a reader group fail the test.
func datasetGrants(t *testing.T, r tfeval.Resource) []grant {
	t.Helper()
	entries := check(r.Blocks("access")).of(t)
	if len(entries) == 0 {
		t.Errorf("%s: no access entries: BigQuery's defaults let every project viewer read the dataset and every editor write it", r.Where)
	}
	var out []grant
	for _, a := range entries {
		legacy, _, err := a.Str("role")
		if err != nil {
			t.Fatal(err)
		}
		role, ok := legacyDatasetRoles[legacy]
		if !ok {
			t.Errorf("%s: access role %q: use the legacy form (READER, WRITER, OWNER) the API returns", a.Where, legacy)
			continue
		}
		special, _, _ := a.Str("special_group")
		user, _, _ := a.Str("user_by_email")
		group, _, _ := a.Str("group_by_email")
		switch {
		case special == "projectOwners" && legacy == "OWNER":
		case special != "":
			t.Errorf("%s: %s for the special group %s: synced data is for named identities only", a.Where, legacy, special)
		case group != "" && legacy == "READER" && r.Name == "destination":
		case group != "":
			t.Errorf("%s: group %s gets %s on %s: reader groups read the destination only", a.Where, group, legacy, r.Name)
		default:
			m := saMemberRE.FindStringSubmatch(user)
			if m == nil {
				t.Errorf("%s: access for %q, which is not one of pgbq's service accounts", a.Where, user)
				continue
			}
			out = append(out, grant{principal: m[1], role: role, target: r.ID(), where: a.Where})
		}
		for _, other := range []string{"domain", "iam_member", "view", "dataset", "routine"} {
			if blocks, err := a.Blocks(other); err == nil && len(blocks) > 0 {
				t.Errorf("%s: access by %s: not expected", a.Where, other)
			}
			if v, set, err := a.Attr(other); err == nil && set && !v.IsNull() {
				t.Errorf("%s: access by %s: not expected", a.Where, other)
			}
		}
	}
	return out
}

// shortTarget drops the module instance: google_pubsub_topic.dates.
func shortTarget(id string) string {
	if _, after, ok := strings.Cut(id, "/"); ok {
		return after
	}
	return id
}

func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		env       string
		overrides map[string]cty.Value
	}{
		{"dev (Cloud SQL)", "dev", nil},
		{"prod (host)", "prod", nil},
		{"dev (old project)", "dev", map[string]cty.Value{"legacy_pubsub_token_creator": cty.True}},
	}
	for _, tc := range cases {
		in := env(t, tc.env, tc.overrides)
		grants := iamGrants(t, in)
		have := map[string]bool{}
		for _, g := range grants {
			key := fmt.Sprintf("%s %s %s", g.principal, g.role, shortTarget(g.target))
			have[key] = true
			ok := false
			for _, a := range leastPrivilege[g.principal] {
				ok = ok || (a.role == g.role && a.target == shortTarget(g.target))
			}
			if !ok {
				t.Errorf("%s: %s holds %s on %s, beyond the least-privilege table (%s)", tc.name, g.principal, g.role, g.target, g.where)
			}
		}
		for principal, list := range leastPrivilege {
			for _, a := range list {
				if !a.optional && !have[fmt.Sprintf("%s %s %s", principal, a.role, a.target)] {
					t.Errorf("%s: %s lacks %s on %s, which it needs", tc.name, principal, a.role, a.target)
				}
			}
		}
		cloudSQL := in.Vars["database"].GetAttr("cloud_sql_instance").AsString() != ""
		for _, p := range []string{"loader", "backfill", "planner"} {
			if got := have[p+" roles/cloudsql.client project"]; got != cloudSQL {
				t.Errorf("%s: %s holds roles/cloudsql.client: %v, on Cloud SQL: %v", tc.name, p, got, cloudSQL)
			}
		}
		legacy := in.Vars["legacy_pubsub_token_creator"].True()
		if got := have[pubsubAgent+" roles/iam.serviceAccountTokenCreator google_service_account.push"]; got != legacy {
			t.Errorf("%s: token creator granted: %v, asked for: %v", tc.name, got, legacy)
		}
	}
}

// One service account per component, and each component runs as its own.
func TestOneServiceAccountPerComponent(t *testing.T) {
	t.Parallel()
	trigger := cty.ObjectVal(map[string]cty.Value{
		"repository":   cty.StringVal("projects/p/locations/us-central1/connections/gh/repositories/pgbq"),
		"branch_regex": cty.StringVal("^main$"),
	})
	for _, e := range environments {
		in := env(t, e, map[string]cty.Value{"build_trigger": trigger})
		var accounts []string
		for _, sa := range check(in.AllResources("google_service_account")).of(t) {
			accounts = append(accounts, sa.Name)
			id, _, err := sa.Str("account_id")
			if err != nil || !regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`).MatchString(id) {
				t.Errorf("%s: account_id %q is not a valid service account id (%v)", sa.ID(), id, err)
			}
		}
		sort.Strings(accounts)
		want := []string{"backfill", "deployer", "loader", "planner", "push", "scheduler", "tester"}
		if strings.Join(accounts, " ") != strings.Join(want, " ") {
			t.Errorf("%s: service accounts %v, want %v", e, accounts, want)
		}
		identity := func(s tfeval.Scope, attr string) string {
			t.Helper()
			v, _, err := s.Str(attr)
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`^<[a-z0-9_.]+/google_service_account\.([a-z0-9_]+)\.(?:email|name|id)>$`).FindStringSubmatch(v)
			if m == nil {
				t.Errorf("%s.%s = %q is not one of pgbq's service accounts", s.Where, attr, v)
				return ""
			}
			return m[1]
		}
		run := cloudRun(t, in)
		push := pushSubscription(t, in)
		sched := single(t, in, "google_cloud_scheduler_job")
		pool := single(t, in, "google_cloud_run_v2_worker_pool")
		triggers := map[string]tfeval.Resource{}
		for _, tr := range check(in.AllResources("google_cloudbuild_trigger")).of(t) {
			triggers[tr.Name] = tr
		}
		if len(triggers) != 2 {
			t.Fatalf("%s: want a test and a deploy trigger, found %v", e, triggers)
		}
		got := map[string]string{
			"loader":    identity(run[0].template, "service_account"),
			"backfill":  identity(check(pool.One("template")).of(t), "service_account"),
			"planner":   identity(run[1].template, "service_account"),
			"push":      identity(check(check(push.One("push_config")).of(t).One("oidc_token")).of(t), "service_account_email"),
			"scheduler": identity(check(check(sched.One("http_target")).of(t).One("oauth_token")).of(t), "service_account_email"),
			"deployer":  identity(triggers["deploy"].Scope, "service_account"),
			"tester":    identity(triggers["test"].Scope, "service_account"),
		}
		for component, sa := range got {
			if sa != component {
				t.Errorf("%s: %s runs as service account %q, want %q", e, component, sa, component)
			}
		}
	}
}

// customRoles are the permissions of each custom role pgbq defines: the
// publish fence lists, reads and cancels the project's jobs (an earlier
// publish of a day may have been started by another runtime identity) and
// is given nothing else.
var customRoles = map[string][]string{
	"publish_fence": {"bigquery.jobs.get", "bigquery.jobs.listAll", "bigquery.jobs.update"},
}

// customRole checks that a custom role holds exactly the permissions its
// entry in customRoles lists.
func customRole(t *testing.T, r tfeval.Resource) {
	t.Helper()
	name := r.Name
	want, ok := customRoles[name]
	if !ok {
		t.Errorf("%s: custom role %s is not in the least-privilege table", r.Where, name)
		return
	}
	v, ok, err := r.Attr("permissions")
	if err != nil || !ok || !v.CanIterateElements() {
		t.Fatalf("%s: permissions: %v", r.Where, err)
	}
	var got []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		got = append(got, e.AsString())
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: custom role %s grants %v, want exactly %v", r.Where, name, got, want)
	}
}
