package deploycheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/tfeval"
)

// Issue 28, "Security by default": TLS to PostgreSQL that verifies the
// server, pins an execution override cannot get past, one identity per
// workload, the Cloud SQL grant on the instance, datasets with their access
// listed, immutable image tags, approved production deploys. The service
// accounts and dataset access are in iam_test.go's least-privilege table,
// the builds in cloudbuild_test.go.

var sslRootCertRE = regexp.MustCompile(`(?:^| )sslrootcert=(\S+)`)

// withMountedCA stands in for Cloud Run's secret volume: PG_DSN's
// sslrootcert must name a file of a Secret Manager volume the container
// mounts (else the test fails), and is pointed at a CA certificate written
// here, so that the binaries' own validation (which reads the file) can
// run on the rendered environment.
func withMountedCA(t *testing.T, where string, tmpl, container tfeval.Scope, env map[string]string) map[string]string {
	t.Helper()
	m := sslRootCertRE.FindStringSubmatch(env["PG_DSN"])
	if m == nil {
		return env
	}
	dir, file := path.Dir(m[1]), path.Base(m[1])
	volume := ""
	for _, vm := range check(container.Blocks("volume_mounts")).of(t) {
		if p, _, _ := vm.Str("mount_path"); p == dir {
			volume, _, _ = vm.Str("name")
		}
	}
	found := false
	for _, v := range check(tmpl.Blocks("volumes")).of(t) {
		if name, _, _ := v.Str("name"); name != volume || volume == "" {
			continue
		}
		for _, sec := range check(v.Blocks("secret")).of(t) {
			for _, it := range check(sec.Blocks("items")).of(t) {
				p, _, _ := it.Str("path")
				version, _, _ := it.Str("version")
				found = found || (p == file && regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(version))
			}
		}
	}
	if !found {
		t.Errorf("%s: PG_DSN's sslrootcert %s is not a file of a Secret Manager volume (pinned version) mounted at %s", where, m[1], dir)
		return env
	}
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	out["PG_DSN"] = strings.Replace(env["PG_DSN"], "sslrootcert="+m[1], "sslrootcert="+testCA(t), 1)
	return out
}

// testCA writes a self-signed CA certificate and returns its path.
func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deploycheck CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostDatabase is prod's example source at a host, with changes.
func hostDatabase(changes map[string]cty.Value) cty.Value {
	obj := map[string]cty.Value{"name": str("app"), "user": str("pgbq"), "host": str("10.20.0.5"), "ca_secret_version": str("1")}
	for k, v := range changes {
		obj[k] = v
	}
	return cty.ObjectVal(obj)
}

// PostgreSQL at a host is reached over TLS that verifies the server:
// sslmode defaults to verify-full, sslrootcert names the CA mounted from the
// pg-ca secret at the version database.ca_secret_version pins, and every
// runtime (service, pool, job) gets the same. A mode that does not verify
// needs allow_unverified_tls, which sets PG_ALLOW_UNVERIFIED_TLS, without
// which the binaries refuse it. The Cloud SQL connector's socket keeps
// sslmode=disable: the connector encrypts it (said in the config module).
func TestPostgresTLSVerifiesTheServer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		env       string
		database  cty.Value
		mode      string // sslmode PG_DSN must carry
		ca        string // secret version mounted; "" none
		allowed   bool   // PG_ALLOW_UNVERIFIED_TLS=true
		cloudSQL  bool
		overrides map[string]cty.Value
	}{
		{name: "prod example", env: "prod", mode: "verify-full", ca: "1"},
		{name: "sslmode left out", env: "prod", database: hostDatabase(nil), mode: "verify-full", ca: "1"},
		{name: "verify-ca", env: "prod", database: hostDatabase(map[string]cty.Value{"sslmode": str("verify-ca"), "ca_secret_version": str("3")}), mode: "verify-ca", ca: "3"},
		{name: "require, allowed", env: "prod", database: hostDatabase(map[string]cty.Value{"sslmode": str("require"), "ca_secret_version": str(""), "allow_unverified_tls": cty.True}), mode: "require", allowed: true},
		{name: "dev example (Cloud SQL)", env: "dev", mode: "disable", cloudSQL: true},
	}
	for _, tc := range cases {
		overrides := map[string]cty.Value{}
		if tc.database != cty.NilVal {
			overrides["database"] = tc.database
		}
		in := env(t, tc.env, overrides)
		var runs []struct {
			binary          string
			tmpl, container tfeval.Scope
			where           string
		}
		for _, rr := range cloudRun(t, in) {
			runs = append(runs, struct {
				binary          string
				tmpl, container tfeval.Scope
				where           string
			}{rr.binary, rr.template, rr.container, tc.name + " " + rr.binary})
		}
		pool := single(t, in, "google_cloud_run_v2_worker_pool")
		poolTmpl := check(pool.One("template")).of(t)
		runs = append(runs, struct {
			binary          string
			tmpl, container tfeval.Scope
			where           string
		}{"loader", poolTmpl, check(poolTmpl.One("containers")).of(t), tc.name + " back-fill pool"})
		for _, r := range runs {
			got := envOf(t, r.container)
			dsn := got["PG_DSN"]
			if !strings.Contains(dsn, " sslmode="+tc.mode) {
				t.Errorf("%s: PG_DSN %q, want sslmode=%s", r.where, dsn, tc.mode)
			}
			if (got["PG_ALLOW_UNVERIFIED_TLS"] == "true") != tc.allowed {
				t.Errorf("%s: PG_ALLOW_UNVERIFIED_TLS = %q, want it true only when allowed", r.where, got["PG_ALLOW_UNVERIFIED_TLS"])
			}
			m := sslRootCertRE.FindStringSubmatch(dsn)
			switch {
			case tc.ca == "" && m != nil:
				t.Errorf("%s: PG_DSN %q names a CA none was given for", r.where, dsn)
			case tc.ca != "" && m == nil:
				t.Errorf("%s: PG_DSN %q names no sslrootcert", r.where, dsn)
			case tc.ca != "":
				// The mounted file is the pg-ca secret at the pinned version.
				var secret, version string
				for _, v := range check(r.tmpl.Blocks("volumes")).of(t) {
					for _, sec := range check(v.Blocks("secret")).of(t) {
						secret, _, _ = sec.Str("secret")
						version, _, _ = check(sec.One("items")).of(t).Str("version")
					}
				}
				caSecret := ""
				for _, r := range check(in.AllResources("google_secret_manager_secret")).of(t) {
					if r.Name == "pg_ca" {
						caSecret, _, _ = r.Str("secret_id")
					}
				}
				if secret == "" || secret != caSecret || version != tc.ca {
					t.Errorf("%s: the CA volume is secret %q version %q, want the pg_ca secret at version %s", r.where, secret, version, tc.ca)
				}
			}
			lookup := map[string]string{"PG_PASSWORD": "x"}
			for k, v := range got {
				lookup[k] = v
			}
			lookup = withMountedCA(t, r.where, r.tmpl, r.container, lookup)
			if err := validateAs(r.binary, lookup); err != nil {
				t.Errorf("%s: the binary refuses the rendered environment: %v", r.where, err)
			}
			// The same DSN without the allowance is refused by the binary
			// whenever it does not verify a remote server.
			delete(lookup, "PG_ALLOW_UNVERIFIED_TLS")
			err := pgsource.Config{DSN: lookup["PG_DSN"]}.Validate("PG_")
			if refused := err != nil && strings.Contains(err.Error(), "does not verify the server"); refused != tc.allowed {
				t.Errorf("%s: without PG_ALLOW_UNVERIFIED_TLS the binary says %v; want a refusal: %v", r.where, err, tc.allowed)
			}
		}
	}
}

// The Cloud SQL client role is granted on the environment's instance only
// (an IAM condition on its resource name), in the instance's project: a dev
// identity cannot reach prod's instance when both live in one project.
func TestCloudSQLGrantOnTheInstance(t *testing.T) {
	t.Parallel()
	for _, inst := range []string{"my-project-dev:us-central1:app-db", "example.com:shared-db:europe-west4:pg-1"} {
		in := env(t, "dev", map[string]cty.Value{"database": cty.ObjectVal(map[string]cty.Value{
			"name": str("app"), "user": str("pgbq"), "cloud_sql_instance": str(inst)})})
		parts := regexp.MustCompile(`^(.+):[a-z]+-[a-z]+[0-9]+:([a-z][a-z0-9-]*)$`).FindStringSubmatch(inst)
		want := `resource.name == "projects/` + parts[1] + `/instances/` + parts[2] + `"`
		n := 0
		for _, r := range check(in.AllResources("google_project_iam_member")).of(t) {
			if role, _, _ := r.Str("role"); role != "roles/cloudsql.client" {
				continue
			}
			n++
			if p, _, _ := r.Str("project"); p != parts[1] {
				t.Errorf("%s: granted in project %q, the instance is in %q", r.Where, p, parts[1])
			}
			cond, err := r.One("condition")
			if err != nil {
				t.Errorf("%s: roles/cloudsql.client without a condition: every instance of the project", r.Where)
				continue
			}
			if expr, _, _ := cond.Str("expression"); expr != want {
				t.Errorf("%s: condition %q, want %q", r.Where, expr, want)
			}
		}
		if n != 3 {
			t.Errorf("%s: %d roles/cloudsql.client grants, want one per runtime identity (loader, back-fill, planner)", inst, n)
		}
	}
	// No instance, no grant.
	for _, r := range check(env(t, "prod", nil).AllResources("google_project_iam_member")).of(t) {
		if role, _, _ := r.Str("role"); role == "roles/cloudsql.client" {
			t.Errorf("%s: prod reads a host, yet holds roles/cloudsql.client", r.Where)
		}
	}
}

// The planner job, which operators run with overrides, carries the pins in
// its command (which an override cannot change), after the image's own
// entrypoint; they agree with the job's environment, so the binary's own
// check (config.Pins) lets the scheduled run through and refuses a PG_DSN
// or BQ_ENDPOINT an override points elsewhere.
func TestPlannerJobPinsWhereSecretsGo(t *testing.T) {
	t.Parallel()
	df := string(check(os.ReadFile(repo(t, "Dockerfile"))).of(t))
	entry := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"\]$`).FindStringSubmatch(df)
	if entry == nil {
		t.Fatal(`Dockerfile has no ENTRYPOINT ["…"]`)
	}
	for _, e := range environments {
		in := env(t, e, nil)
		job := cloudRun(t, in)[1]
		cmd, _, err := job.container.Attr("command")
		if err != nil || cmd.IsNull() || !cmd.CanIterateElements() {
			t.Fatalf("%s: the planner job has no command (%v): nothing pins it", e, err)
		}
		var argv []string
		for it := cmd.ElementIterator(); it.Next(); {
			_, v := it.Element()
			argv = append(argv, v.AsString())
		}
		if argv[0] != entry[1] {
			t.Errorf("%s: the job's command runs %q, the image's entrypoint is %q", e, argv[0], entry[1])
		}
		pins, rest, err := config.TakePins(argv[1:])
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: command %q: pins %v, then %q", e, argv, err, rest)
		}
		for _, name := range []string{"PG_HOST", "PG_PORT", "PG_ALLOW_UNVERIFIED_TLS", "BQ_PROJECT", "BQ_ENDPOINT", "BQ_DATASET", "BQ_STAGING_DATASET", "BQ_STATE_DATASET"} {
			if _, ok := pins[name]; !ok {
				t.Errorf("%s: the job does not pin %s", e, name)
			}
		}
		got := envOf(t, job.container)
		lookup := map[string]string{"PG_PASSWORD": "x"}
		for k, v := range got {
			lookup[k] = v
		}
		lookup = withMountedCA(t, e+" planner", job.template, job.container, lookup)
		if err := pins.Check(envconfig.MapLookuper(lookup)); err != nil {
			t.Errorf("%s: the job's own environment does not pass its pins: %v", e, err)
		}
		cc, err := pgx.ParseConfig(lookup["PG_DSN"])
		if err != nil {
			t.Fatal(err)
		}
		if h := pgsource.Hosts(cc); len(h) != 1 || pins["PG_HOST"] != h[0].Name {
			t.Errorf("%s: PG_HOST pinned to %q, PG_DSN connects to %v", e, pins["PG_HOST"], h)
		}
		for name, value := range map[string]string{
			"PG_DSN":      strings.Replace(lookup["PG_DSN"], "host="+pins["PG_HOST"], "host=pg.attacker.example", 1),
			"BQ_ENDPOINT": "https://bq.attacker.example/bigquery/v2/",
			"BQ_PROJECT":  "attacker-project",
		} {
			overridden := map[string]string{}
			for k, v := range lookup {
				overridden[k] = v
			}
			overridden[name] = value
			if err := pins.Check(envconfig.MapLookuper(overridden)); err == nil {
				t.Errorf("%s: an override of %s to %q passes the job's pins", e, name, value)
			}
		}
	}
}

// Image tags in Artifact Registry cannot be moved: the tag a deploy names
// is the image that was built and tested for that commit.
func TestImageTagsImmutable(t *testing.T) {
	t.Parallel()
	for _, e := range environments {
		repo := single(t, env(t, e, nil), "google_artifact_registry_repository")
		dc, err := repo.One("docker_config")
		if err != nil {
			t.Errorf("%s: %s has no docker_config: tags are mutable", e, repo.Where)
			continue
		}
		if v, _, err := dc.Attr("immutable_tags"); err != nil || !v.True() {
			t.Errorf("%s: immutable_tags is not true (%v)", e, err)
		}
	}
}

// A production deploy waits for a person's approval; dev's does not. Both
// environments' triggers: tests as the tester, deploys as the deployer.
func TestProductionDeploysApproved(t *testing.T) {
	t.Parallel()
	trigger := cty.ObjectVal(map[string]cty.Value{
		"repository": str("projects/p/locations/us-central1/connections/gh/repositories/pgbq"),
		"tag_regex":  str("^v[0-9]+\\.[0-9]+\\.[0-9]+$"),
	})
	for _, e := range environments {
		in := env(t, e, map[string]cty.Value{"build_trigger": trigger})
		for _, tr := range check(in.AllResources("google_cloudbuild_trigger")).of(t) {
			file, _, _ := tr.Str("filename")
			approval := false
			if ac, err := tr.One("approval_config"); err == nil {
				v, _, _ := ac.Attr("approval_required")
				approval = v.True()
			}
			switch {
			case file == "cloudbuild.yaml" && approval != (e == "prod"):
				t.Errorf("%s: the deploy trigger requires approval: %v, want %v", e, approval, e == "prod")
			case file == "cloudbuild-test.yaml" && approval:
				t.Errorf("%s: the test trigger waits for approval: it has no rights to guard", e)
			case file != "cloudbuild.yaml" && file != "cloudbuild-test.yaml":
				t.Errorf("%s: trigger %s builds %q", e, tr.Name, file)
			}
		}
	}
}

// docs/security.md says what an operator needs: the narrowest role that
// runs the operator commands (they need argument overrides), and no page
// tells operators to take roles/run.developer, which can change the job.
func TestOperatorRoleDocumented(t *testing.T) {
	t.Parallel()
	sec := string(check(os.ReadFile(repo(t, "docs", "security.md"))).of(t))
	for _, want := range []string{"roles/run.jobsExecutorWithOverrides", "run.jobs.runWithOverrides", "roles/cloudbuild.builds.approver", "verify-full", "PG_ALLOW_UNVERIFIED_TLS", "--pin="} {
		if !strings.Contains(sec, want) {
			t.Errorf("docs/security.md does not mention %s", want)
		}
	}
	pages, _ := filepath.Glob(repo(t, "docs", "*.md"))
	pages = append(pages, repo(t, "README.md"))
	for _, p := range pages {
		// Paragraph by paragraph: the sentence naming the role may wrap.
		for _, para := range strings.Split(string(check(os.ReadFile(p)).of(t)), "\n\n") {
			if !strings.Contains(para, "roles/run.developer") {
				continue
			}
			l := strings.ToLower(para)
			if !strings.Contains(l, "deployer") && !strings.Contains(l, "never") && !strings.Contains(l, "not ") {
				t.Errorf("%s mentions roles/run.developer for someone other than the deployer:\n%s", filepath.Base(p), para)
			}
		}
	}
}

// Every build the docs and the build files tell a person to submit by
// hand names the service account it runs as: without one it would run as
// the project's default build account, with its broad default rights
// (the first build of the first apply included).
func TestManualBuildsNameTheirAccount(t *testing.T) {
	t.Parallel()
	pages, _ := filepath.Glob(repo(t, "docs", "*.md"))
	pages = append(pages, repo(t, "README.md"), repo(t, "cloudbuild.yaml"), repo(t, "cloudbuild-test.yaml"))
	found := 0
	for _, p := range pages {
		lines := strings.Split(string(check(os.ReadFile(p)).of(t)), "\n")
		for i, line := range lines {
			if !strings.Contains(line, "gcloud builds submit") {
				continue
			}
			found++
			// The command with its continuation lines: in a shell block those
			// ending in a backslash, in prose the rest of the paragraph.
			cmd := line[strings.Index(line, "gcloud builds submit"):]
			shell := strings.HasSuffix(strings.TrimSpace(line), "\\")
			for j := i + 1; j < len(lines); j++ {
				next := lines[j]
				if shell && !strings.HasSuffix(strings.TrimSpace(lines[j-1]), "\\") ||
					!shell && (strings.TrimSpace(next) == "" || strings.Contains(next, "gcloud builds submit")) {
					break
				}
				cmd += "\n" + next
			}
			if !strings.Contains(cmd, "--service-account=") {
				t.Errorf("%s:%d: gcloud builds submit without --service-account: it would run as the default build account:\n%s", filepath.Base(p), i+1, cmd)
			}
		}
	}
	if found == 0 {
		t.Error("no gcloud builds submit found: the first deploy's build is documented nowhere")
	}
}
