package deploycheck

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/tfeval"
)

func str(s string) cty.Value  { return cty.StringVal(s) }
func num(n int64) cty.Value   { return cty.NumberIntVal(n) }
func flt(f float64) cty.Value { return cty.NumberFloatVal(f) }

// table is one entry of the tables variable.
func table(name string, attrs map[string]cty.Value) cty.Value {
	obj := map[string]cty.Value{"table": str(name)}
	for k, v := range attrs {
		obj[k] = v
	}
	return cty.ObjectVal(obj)
}

func database(attrs map[string]string) cty.Value {
	obj := map[string]cty.Value{"name": str("app"), "user": str("pgbq")}
	for k, v := range attrs {
		obj[k] = str(v)
	}
	return cty.ObjectVal(obj)
}

// A wrong value for a variable a person types fails at plan time with the
// variable's error message: the validation conditions are evaluated here as
// Terraform evaluates them, for values that must fail and values that must
// pass. Both environments declare the same variables (checked in
// TestEnvironmentsDifferOnlyWhereIntended); each is checked.
// validationCase is a value for an environment variable and what a plan
// must say about it.
type validationCase struct {
	variable string
	value    cty.Value
	// want is nil for a value that must pass, else words the message a
	// person sees must contain.
	want []string
}

func validationCases() []validationCase {
	budget := int64(config.MaxLoaderBudget / time.Second)
	return []validationCase{
		{"region", str("us-central1"), nil},
		{"region", str("europe-west4"), nil},
		{"region", str("us_central1"), []string{"region", "us-central1"}},
		{"region", str("us-central1-a"), []string{"region", "not a zone"}},
		{"region", str("US"), []string{"region", "multi-region"}},
		{"region", str(""), []string{"region"}},

		{"planner_schedule", str("0 * * * *"), nil},
		{"planner_schedule", str("*/15 * * * *"), nil},
		{"planner_schedule", str("0 3 * * MON-FRI"), nil},
		{"planner_schedule", str("every hour"), []string{"planner_schedule", "cron", "5 fields"}},
		{"planner_schedule", str("*/15 * * *"), []string{"cron"}},
		{"planner_schedule", str("0 0 * * * *"), []string{"cron"}},
		{"planner_schedule", str("@hourly"), []string{"cron"}},

		{"chunk_size", num(250000), nil},
		{"chunk_size", num(1), nil},
		{"chunk_size", num(config.MaxChunkSize), nil},
		{"chunk_size", num(0), []string{"chunk_size", "SYNC_CHUNK_SIZE", "1 to 2000000"}},
		{"chunk_size", num(-5), []string{"chunk_size"}},
		{"chunk_size", num(config.MaxChunkSize + 1), []string{"chunk_size"}},
		{"chunk_size", flt(1000.5), []string{"whole number"}},

		{"loader_max_instances", num(10), nil},
		{"loader_max_instances", num(0), []string{"loader_max_instances", "1 to 100"}},
		{"loader_max_instances", num(101), []string{"loader_max_instances"}},

		{"loader_budget_seconds", num(480), nil},
		{"loader_budget_seconds", num(budget), nil},
		{"loader_budget_seconds", num(budget + 1), []string{"LOADER_BUDGET", "600-second"}},
		{"loader_budget_seconds", num(600), []string{"LOADER_BUDGET"}},
		{"loader_budget_seconds", num(9), []string{"LOADER_BUDGET"}},

		{"name_prefix", str("pgbq"), nil},
		{"name_prefix", str("abcdefghijklmno"), nil},
		{"name_prefix", str("PGBQ"), []string{"name_prefix", "lowercase"}},
		{"name_prefix", str("pgbq-"), []string{"name_prefix"}},
		{"name_prefix", str("abcdefghijklmnop"), []string{"name_prefix", "30 characters"}},
		{"name_prefix", str("9pgbq"), []string{"name_prefix"}},

		{"project_id", str("my-project-123"), nil},
		{"project_id", str("My Project"), []string{"project_id"}},
		{"project_id", str("123456789012"), []string{"project_id"}},

		{"pg_password_secret_version", str("3"), nil},
		{"pg_password_secret_version", str("latest"), []string{"pg_password_secret_version", "not \"latest\""}},
		{"pg_password_secret_version", str("0"), []string{"pg_password_secret_version"}},

		{"database", database(map[string]string{"cloud_sql_instance": "p:us-central1:db"}), nil},
		{"database", database(map[string]string{"host": "10.0.0.5", "ca_secret_version": "1"}), nil},
		{"database", database(map[string]string{"host": "db.internal", "sslmode": "verify-full", "ca_secret_version": "2"}), nil},
		{"database", database(map[string]string{"host": "db.internal", "sslmode": "verify-ca", "ca_secret_version": "2"}), nil},
		{"database", database(map[string]string{"host": "fd00::5", "ca_secret_version": "1"}), nil},
		{"database", database(map[string]string{"host": "db.internal", "sslmode": "require", "allow_unverified_tls": "true"}), nil},
		// Issue 28: TLS that verifies the server by default, with a CA;
		// weaker modes only when allowed; no parameter smuggled in the host.
		{"database", database(map[string]string{"host": "10.0.0.5"}), []string{"ca_secret_version", "CA certificate"}},
		{"database", database(map[string]string{"host": "db.internal", "sslmode": "verify-ca"}), []string{"ca_secret_version"}},
		{"database", database(map[string]string{"host": "db.internal", "sslmode": "require", "ca_secret_version": "1"}), []string{"sslmode", "allow_unverified_tls"}},
		{"database", database(map[string]string{"host": "db.internal", "sslmode": "disable"}), []string{"do not verify the server"}},
		{"database", database(map[string]string{"host": "db.internal sslmode=disable", "ca_secret_version": "1"}), []string{"database.host", "host name"}},
		{"database", database(map[string]string{"host": "db'x", "ca_secret_version": "1"}), []string{"database.host"}},
		{"database", database(map[string]string{"host": "db.internal", "ca_secret_version": "latest"}), []string{"ca_secret_version"}},
		{"database", database(nil), []string{"exactly one of cloud_sql_instance or host"}},
		{"database", database(map[string]string{"cloud_sql_instance": "p:us-central1:db", "host": "10.0.0.5"}), []string{"exactly one"}},
		{"database", database(map[string]string{"cloud_sql_instance": "db"}), []string{"PROJECT:REGION:INSTANCE"}},
		{"database", database(map[string]string{"host": "h", "sslmode": "on", "ca_secret_version": "1"}), []string{"sslmode"}},
		{"database", database(map[string]string{"host": "h", "name": "app; drop", "ca_secret_version": "1"}), []string{"plain identifiers"}},

		{"max_delivery_attempts", num(10), nil},
		{"max_delivery_attempts", num(4), []string{"max_delivery_attempts", "5 to 100"}},
		{"max_delivery_attempts", num(101), []string{"max_delivery_attempts"}},

		{"bigquery_location", str("EU"), nil},
		{"bigquery_location", str("europe-west4"), nil},
		{"bigquery_location", str("us"), []string{"bigquery_location"}},

		{"dest_table", str(""), nil},
		{"dest_table", str("activity_logs"), nil},
		{"dest_table", str("activity-logs"), []string{"dest_table"}},
		{"dest_table", str(strings.Repeat("t", 1025)), []string{"dest_table"}},

		{"start_date", str(""), nil},
		{"start_date", str("2024-02-29"), nil},
		{"start_date", str("2024-13-01"), []string{"start_date", "YYYY-MM-DD"}},

		{"finish_grace", str("1h30m"), nil},
		{"finish_grace", str("an hour"), []string{"finish_grace"}},

		{"log_level", str("warn"), nil},
		{"log_level", str("verbose"), []string{"log_level"}},

		{"bigquery_datasets", cty.ObjectVal(map[string]cty.Value{"destination": str("analytics")}), nil},
		{"bigquery_datasets", cty.ObjectVal(map[string]cty.Value{"staging": str("my-staging")}), []string{"bigquery_datasets"}},
		{"bigquery_datasets", cty.ObjectVal(map[string]cty.Value{"state": str(strings.Repeat("s", 1025))}), []string{"bigquery_datasets"}},

		{"image_tag", str("0123abc"), nil},
		{"image_tag", str("has space"), []string{"image_tag"}},

		{"vpc_egress", cty.NullVal(cty.DynamicPseudoType), nil},
		{"vpc_egress", cty.ObjectVal(map[string]cty.Value{"network": str("vpc"), "subnetwork": str("")}), []string{"vpc_egress"}},

		{"tables", cty.ListValEmpty(cty.DynamicPseudoType), nil},
		{"tables", cty.TupleVal([]cty.Value{table("public.a", nil), table("public.b", map[string]cty.Value{"dest_table": str("b2"), "chunk_size": num(1000), "start_date": str("2024-01-31")})}), nil},
		{"tables", cty.TupleVal([]cty.Value{table("", nil)}), []string{"tables", "1 to 200"}},
		{"tables", cty.TupleVal([]cty.Value{table("a", map[string]cty.Value{"dest_table": str("a-b")})}), []string{"dest_table", "BigQuery table name"}},
		{"tables", cty.TupleVal([]cty.Value{table("a", map[string]cty.Value{"start_date": str("2024-1-1")})}), []string{"start_date", "YYYY-MM-DD"}},
		{"tables", cty.TupleVal([]cty.Value{table("a", map[string]cty.Value{"chunk_size": num(0)})}), []string{"chunk_size", "SYNC_CHUNK_SIZE"}},
		{"tables", cty.TupleVal([]cty.Value{table("a", map[string]cty.Value{"time_zone": str("Berlin time")})}), []string{"time_zone"}},
		{"tables", cty.TupleVal([]cty.Value{table("public.a", nil), table("other.a", nil)}), []string{"distinct BigQuery tables"}},

		{"planner_recheck_days", num(0), nil},
		{"planner_recheck_days", num(366), nil},
		{"planner_recheck_days", num(367), []string{"planner_recheck_days", "PLANNER_RECHECK_DAYS"}},
		{"planner_recheck_days", flt(1.5), []string{"planner_recheck_days"}},
		{"planner_quarantine_after", num(0), nil},
		{"planner_quarantine_after", num(1000), nil},
		{"planner_quarantine_after", num(-1), []string{"planner_quarantine_after", "PLANNER_QUARANTINE_AFTER"}},
		{"planner_quarantine_after", flt(2.5), []string{"planner_quarantine_after"}},

		{"planner_in_flight", str("15m"), nil},
		{"planner_in_flight", str("1h30m"), nil},
		{"planner_in_flight", str("15 minutes"), []string{"planner_in_flight"}},
		{"planner_in_flight", str(""), []string{"planner_in_flight"}},
		{"planner_queued", str("72h"), nil},
		{"planner_queued", str("1 day"), []string{"planner_queued", "PLANNER_QUEUED"}},
		{"planner_queued", str(""), []string{"planner_queued"}},

		{"notification_channels", cty.ListVal([]cty.Value{str("projects/my-project-1/notificationChannels/123")}), nil},
		{"notification_channels", cty.ListVal([]cty.Value{str("123")}), []string{"notification channel", "projects/PROJECT/notificationChannels/NUMBER"}},

		{"runbook_url", str("https://example.com/pgbq/docs/runbook.md"), nil},
		{"runbook_url", str("https://example.com/docs/runbook.md#alert-data-not-fresh"), []string{"runbook_url", "fragment"}},
		{"runbook_url", str("http://example.com/docs/runbook.md"), []string{"runbook_url"}},

		{"backfill_loaders", num(0), nil},
		{"backfill_loaders", num(50), nil},
		{"backfill_loaders", num(101), []string{"backfill_loaders", "0 to 100"}},
		{"backfill_loaders", flt(2.5), []string{"backfill_loaders"}},
		{"backfill_max_outstanding", num(1), nil},
		{"backfill_max_outstanding", num(0), []string{"backfill_max_outstanding", "1 to 64"}},

		{"freshness_lag_hours", num(30), nil},
		{"freshness_lag_hours", num(0), []string{"freshness_lag_hours"}},

		{"build_trigger", cty.ObjectVal(map[string]cty.Value{
			"repository": str("projects/p/locations/r/connections/c/repositories/x"), "branch_regex": str("^main$")}), nil},
		{"build_trigger", cty.ObjectVal(map[string]cty.Value{
			"repository": str("projects/p/locations/r/connections/c/repositories/x")}), []string{"exactly one of branch_regex or tag_regex"}},
		{"build_trigger", cty.ObjectVal(map[string]cty.Value{
			"repository": str("github.com/me/pgbq"), "branch_regex": str("^main$")}), []string{"repository"}},
	}
}

func TestValidationRejectsWrongValues(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		m := check(tfeval.LoadModule(repo(t, "terraform", "envs", e))).of(t)
		for _, tc := range validationCases() {
			name := fmt.Sprintf("%s/%s=%s", e, tc.variable, tc.value.GoString())
			fails, err := m.Validate(tc.variable, tc.value)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if tc.want == nil {
				if len(fails) > 0 {
					t.Errorf("%s: rejected a valid value: %v", name, fails)
				}
				continue
			}
			if len(fails) == 0 {
				t.Errorf("%s: accepted a wrong value", name)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(fails[0].Message, w) {
					t.Errorf("%s: the message %q does not say %q", name, fails[0].Message, w)
				}
			}
		}
	}
}

// The longest name_prefix the validation lets through still makes valid
// service account ids (at most 30 characters) in the longer-named
// environment.
func TestLongestNamePrefixFits(t *testing.T) {
	t.Parallel()
	in := env(t, "prod", map[string]cty.Value{"name_prefix": str("abcdefghijklmno")})
	for _, sa := range check(in.AllResources("google_service_account")).of(t) {
		id, _, err := sa.Str("account_id")
		if err != nil {
			t.Fatal(err)
		}
		if len(id) > 30 {
			t.Errorf("%s: account_id %q has %d characters, more than 30", sa.ID(), id, len(id))
		}
	}
	for _, typ := range []string{"google_cloud_run_v2_service", "google_cloud_run_v2_job"} {
		r := single(t, in, typ)
		if name, _, _ := r.Str("name"); len(name) > 49 {
			t.Errorf("%s: name %q is longer than Cloud Run's 49 characters", r.ID(), name)
		}
	}
}

// The whole environment refuses a wrong variable, not only its validation
// block in isolation: instantiating it with a bad value fails with the
// message.
func TestPlanFailsOnWrongVariable(t *testing.T) {
	t.Parallel()
	dir := repo(t, "terraform", "envs", "dev")
	for variable, value := range map[string]cty.Value{
		"region":           str("us_central1"),
		"planner_schedule": str("hourly"),
		"chunk_size":       num(0),
	} {
		_, err := tfeval.NewRoot("dev", dir, dir+"/example.tfvars", map[string]cty.Value{variable: value})
		if err == nil || !strings.Contains(err.Error(), "var."+variable+" fails validation") {
			t.Errorf("dev with %s=%s: %v", variable, value.GoString(), err)
		}
	}
}

// Several tables travel as SYNC_TABLES, which the binaries' own
// configuration reads back as the same tables; source_table and tables
// together (or neither) are refused.
func TestTablesBecomeSyncTables(t *testing.T) {
	t.Parallel()
	tables := cty.TupleVal([]cty.Value{
		table("public.a", nil),
		table("audit.b", map[string]cty.Value{"dest_table": str("b_log"), "chunk_size": num(1000), "time_zone": str("Europe/Berlin")}),
	})
	in := env(t, "dev", map[string]cty.Value{"source_table": str(""), "tables": tables})
	for _, rr := range cloudRun(t, in) {
		got := envOf(t, rr.container)
		if _, set := got["SYNC_TABLE"]; set {
			t.Errorf("%s: SYNC_TABLE is set beside SYNC_TABLES", rr.binary)
		}
		lookup := map[string]string{"PG_PASSWORD": "x"}
		for k, v := range got {
			lookup[k] = v
		}
		if err := validateAs(rr.binary, lookup); err != nil {
			t.Errorf("%s: %v", rr.binary, err)
		}
		var c config.Common
		if err := config.Load(context.Background(), &c, envconfig.MapLookuper(lookup)); err != nil {
			t.Fatal(err)
		}
		tcs, err := c.TableConfigs()
		if err != nil {
			t.Fatal(err)
		}
		if len(tcs) != 2 || tcs[0].Table != "public.a" || tcs[0].DestTable != "a" || tcs[1].DestTable != "b_log" ||
			tcs[1].ChunkSize != 1000 || tcs[1].TimeZone != "Europe/Berlin" || tcs[0].ChunkSize != 250000 {
			t.Errorf("%s: SYNC_TABLES %q reads back as %+v", rr.binary, got["SYNC_TABLES"], tcs)
		}
	}
	dir := repo(t, "terraform", "envs", "dev")
	for name, vars := range map[string]map[string]cty.Value{
		"both":    {"tables": tables},
		"neither": {"source_table": str("")},
	} {
		in, err := tfeval.NewRoot("dev", dir, dir+"/example.tfvars", vars)
		if err == nil {
			err = in.CheckInputs()
		}
		if err == nil || !strings.Contains(err.Error(), "Exactly one of the source table") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Terraform itself agrees with the evaluator on every case above: the
// environment's variables.tf alone (validation needs no provider, so this
// runs offline), given example.tfvars and the case's value, plans or
// fails with the same message.
func TestValidationAgreesWithTerraform(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("terraform")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("terraform is not on PATH and CI is set")
		}
		t.Skip("terraform is not on PATH: the comparison with Terraform needs it (Cloud Build provides it)")
	}
	dir := t.TempDir()
	for _, f := range []string{"variables.tf", "example.tfvars"} {
		src := check(os.ReadFile(repo(t, "terraform", "envs", "dev", f))).of(t)
		name := f
		if f == "example.tfvars" {
			name = "terraform.tfvars"
		}
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_CLI_CONFIG_FILE="+os.DevNull, "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(dir, "init", "-backend=false", "-input=false", "-no-color"); err != nil {
		t.Fatalf("terraform init: %v\n%s", err, out)
	}
	cases := validationCases()
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("%s=%s", tc.variable, tc.value.GoString())
			caseDir := filepath.Join(t.TempDir(), fmt.Sprint(i))
			if err := os.CopyFS(caseDir, os.DirFS(dir)); err != nil {
				t.Error(err)
				return
			}
			js, err := ctyjson.Marshal(tc.value, tc.value.Type())
			if err != nil {
				t.Error(err)
				return
			}
			override := fmt.Sprintf(`{%q: %s}`, tc.variable, js)
			if err := os.WriteFile(filepath.Join(caseDir, "case.auto.tfvars.json"), []byte(override), 0o644); err != nil {
				t.Error(err)
				return
			}
			out, err := run(caseDir, "plan", "-input=false", "-lock=false", "-no-color")
			flat := strings.Join(strings.Fields(strings.ReplaceAll(out, "│", "")), " ")
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("%s: terraform refuses a value the evaluator accepts:\n%s", name, out)
			case tc.want != nil && err == nil:
				t.Errorf("%s: terraform accepts a value the evaluator refuses", name)
			case tc.want != nil:
				for _, w := range tc.want {
					if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
						t.Errorf("%s: terraform's message does not say %q:\n%s", name, w, out)
					}
				}
			}
		}()
	}
	wg.Wait()
}
