package deploycheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgbq/pgbq/internal/tfeval"
)

// tfFiles lists every Terraform source under terraform/.
func tfFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(repo(t, "terraform"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".terraform" {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".tf") || strings.HasSuffix(p, ".tfvars")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d Terraform files found under terraform/", len(files))
	}
	return files
}

// moduleDirs are terraform/modules/* and terraform/envs/*.
func moduleDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, parent := range []string{"modules", "envs"} {
		entries := check(os.ReadDir(repo(t, "terraform", parent))).of(t)
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, repo(t, "terraform", parent, e.Name()))
			}
		}
	}
	return dirs
}

func TestTerraformFormatted(t *testing.T) {
	t.Parallel()
	// The canonical form, as hclwrite (what `terraform fmt` builds on) writes it.
	for _, p := range tfFiles(t) {
		src := check(os.ReadFile(p)).of(t)
		if got := hclwrite.Format(src); !bytes.Equal(got, src) {
			t.Errorf("%s is not formatted: run `terraform fmt -recursive terraform`", p)
		}
	}
	// And the terraform binary itself, where there is one.
	bin, err := exec.LookPath("terraform")
	if err != nil {
		// Cloud Build's test step has it (cloudbuild.yaml, step
		// terraform-binary) and sets CI: there its absence is a failure.
		if os.Getenv("CI") != "" {
			t.Fatal("terraform is not on PATH and CI is set: `terraform fmt -check` cannot run")
		}
		t.Skip("terraform is not on PATH: checked with hclwrite.Format only; `terraform fmt -check` needs it")
	}
	cmd := exec.Command(bin, "fmt", "-check", "-recursive", "-diff", repo(t, "terraform"))
	cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Errorf("terraform fmt -check -recursive terraform: %v\n%s", err, out.String())
	}
}

func TestEveryVariableAndOutputIsDescribed(t *testing.T) {
	t.Parallel()
	for _, dir := range moduleDirs(t) {
		m := check(tfeval.LoadModule(dir)).of(t)
		if len(m.Inspect.Variables) == 0 {
			t.Errorf("%s declares no variables", dir)
		}
		for name, v := range m.Inspect.Variables {
			if strings.TrimSpace(v.Description) == "" {
				t.Errorf("%s: variable %q has no description", dir, name)
			}
		}
		for name, o := range m.Inspect.Outputs {
			if strings.TrimSpace(o.Description) == "" {
				t.Errorf("%s: output %q has no description", dir, name)
			}
		}
	}
}

func TestVersionsArePinned(t *testing.T) {
	t.Parallel()
	for _, dir := range moduleDirs(t) {
		m := check(tfeval.LoadModule(dir)).of(t)
		if len(m.Inspect.RequiredCore) == 0 {
			t.Errorf("%s: no required_version", dir)
		}
		for _, c := range m.Inspect.RequiredCore {
			if !strings.HasPrefix(c, "~> 1.") {
				t.Errorf("%s: required_version %q: pin Terraform 1.x with ~>", dir, c)
			}
		}
		usesGoogle := len(m.Resources) > 0 || len(m.Data) > 0 || len(m.Calls) > 0
		req, ok := m.Inspect.RequiredProviders["google"]
		if usesGoogle && !ok {
			t.Errorf("%s: uses the google provider without required_providers", dir)
			continue
		}
		if !ok {
			continue
		}
		if req.Source != "hashicorp/google" {
			t.Errorf("%s: google provider source %q", dir, req.Source)
		}
		if len(req.VersionConstraints) != 1 || !strings.HasPrefix(req.VersionConstraints[0], "~> 7.") {
			t.Errorf("%s: google provider constraints %v: want ~> 7.x", dir, req.VersionConstraints)
		}
	}
}

// Each environment keeps its state in GCS under its own prefix.
func TestEnvironmentsHaveTheirOwnGCSBackend(t *testing.T) {
	t.Parallel()
	prefixes := map[string]string{}
	for _, e := range environments {
		m := check(tfeval.LoadModule(repo(t, "terraform", "envs", e))).of(t)
		var backends []*hclsyntax.Block
		for _, tb := range m.Terraform {
			for _, b := range tb.Body.Blocks {
				if b.Type == "backend" {
					backends = append(backends, b)
				}
			}
		}
		if len(backends) != 1 || backends[0].Labels[0] != "gcs" {
			t.Errorf("%s: want one backend \"gcs\" block, found %d", e, len(backends))
			continue
		}
		a, ok := backends[0].Body.Attributes["prefix"]
		if !ok {
			t.Errorf("%s: gcs backend has no prefix", e)
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Errorf("%s: backend prefix must be a literal: %s", e, diags.Error())
			continue
		}
		if other, dup := prefixes[v.AsString()]; dup {
			t.Errorf("%s and %s share the state prefix %q", e, other, v.AsString())
		}
		prefixes[v.AsString()] = e
		if _, err := os.Stat(repo(t, "terraform", "envs", e, "example.tfvars")); err != nil {
			t.Errorf("%s has no example.tfvars: %v", e, err)
		}
	}
}

// flatten evaluates every argument of a body and of its nested blocks
// (dynamic ones expanded) into path -> value.
func flatten(t *testing.T, sc tfeval.Scope, prefix string, out map[string]string) {
	t.Helper()
	for name := range sc.Body.Attributes {
		if name == "depends_on" {
			continue
		}
		v, _, err := sc.Attr(name)
		if err != nil {
			t.Fatal(err)
		}
		out[prefix+"."+name] = v.GoString()
	}
	types := map[string]bool{}
	for _, b := range sc.Body.Blocks {
		switch b.Type {
		case "lifecycle":
		case "dynamic":
			types[b.Labels[0]] = true
		default:
			types[b.Type] = true
		}
	}
	for typ := range types {
		for i, nested := range check(sc.Blocks(typ)).of(t) {
			flatten(t, nested, fmt.Sprintf("%s.%s[%d]", prefix, typ, i), out)
		}
	}
}

// evaluatedEnvironment is every resource argument and output of
// environment e, instantiated with the variables vars, with the
// environment's name replaced by ENV.
func evaluatedEnvironment(t *testing.T, e string, vars map[string]cty.Value) map[string]string {
	t.Helper()
	dir := repo(t, "terraform", "envs", e)
	in := check(tfeval.NewRoot(e, dir, repo(t, "terraform", "envs", "dev", "example.tfvars"), vars)).of(t)
	out := map[string]string{}
	for _, r := range check(in.AllResources("")).of(t) {
		flatten(t, r.Scope, r.Where, out)
	}
	for name := range in.Mod.Outputs {
		out["output."+name] = check(in.Output(name)).of(t).GoString()
	}
	// The name as a word of its own: pgbq-dev-loader, pgbq_dev, <dev.stack…>
	// (not a host name such as docker.pkg.dev).
	envRE := regexp.MustCompile(`(^|[^a-z.])` + e + `([^a-z]|$)`)
	norm := map[string]string{}
	for k, v := range out {
		norm[envRE.ReplaceAllString(k, "${1}ENV${2}")] = envRE.ReplaceAllString(v, "${1}ENV${2}")
	}
	return norm
}

// dev and prod declare the same inputs and, given the same values, make
// the same resources with the same arguments and the same outputs, except
// for the environment's name and deletion protection (what main.tf fixes).
func TestEnvironmentsDifferOnlyWhereIntended(t *testing.T) {
	t.Parallel()
	mods := map[string]*tfeval.Module{}
	for _, e := range environments {
		m := check(tfeval.LoadModule(repo(t, "terraform", "envs", e))).of(t)
		mods[e] = m
		if len(m.Calls) != 1 || m.Calls["stack"] == nil || len(m.Resources) > 0 || len(m.Data) > 0 {
			t.Errorf("envs/%s: want exactly one module call, \"stack\", and no resources of its own", e)
		}
	}
	for name, dv := range mods["dev"].Inspect.Variables {
		pv, ok := mods["prod"].Inspect.Variables[name]
		if !ok {
			t.Errorf("variable %s: in dev, not in prod", name)
			continue
		}
		if dv.Type != pv.Type || fmt.Sprint(dv.Default) != fmt.Sprint(pv.Default) || dv.Required != pv.Required {
			t.Errorf("variable %s: dev (%s, %v) and prod (%s, %v) differ", name, dv.Type, dv.Default, pv.Type, pv.Default)
		}
	}
	for name := range mods["prod"].Inspect.Variables {
		if _, ok := mods["dev"].Inspect.Variables[name]; !ok {
			t.Errorf("variable %s: in prod, not in dev", name)
		}
	}
	// Neutral values: nothing in them names an environment.
	vars := map[string]cty.Value{
		"project_id": str("acme-data"),
		"database":   database(map[string]string{"cloud_sql_instance": "acme-data:us-central1:app-db"}),
	}
	dev, prod := evaluatedEnvironment(t, "dev", vars), evaluatedEnvironment(t, "prod", vars)
	if len(dev) < 100 {
		t.Fatalf("only %d evaluated arguments in dev", len(dev))
	}
	intended := regexp.MustCompile(`\.(deletion_protection|delete_contents_on_destroy)$`)
	for k, dv := range dev {
		pv, ok := prod[k]
		switch {
		case !ok:
			t.Errorf("%s: in dev only", k)
		case dv != pv && !intended.MatchString(k):
			t.Errorf("%s differs:\n dev:  %s\n prod: %s", k, dv, pv)
		}
	}
	for k := range prod {
		if _, ok := dev[k]; !ok {
			t.Errorf("%s: in prod only", k)
		}
	}
	protected := 0
	for k := range dev {
		if intended.MatchString(k) && dev[k] != prod[k] {
			protected++
		}
	}
	if protected == 0 {
		t.Error("dev and prod do not differ in deletion protection")
	}
}

// No member anywhere may be allUsers or allAuthenticatedUsers: checked in
// the source's string literals here, and on every evaluated IAM member in
// TestLeastPrivilege.
func TestNoPublicPrincipals(t *testing.T) {
	t.Parallel()
	public := regexp.MustCompile(`(?i)all(authenticated)?users`)
	for _, p := range tfFiles(t) {
		src := check(os.ReadFile(p)).of(t)
		tokens, diags := hclsyntax.LexConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", p, diags.Error())
		}
		for _, tok := range tokens {
			if tok.Type == hclsyntax.TokenQuotedLit || tok.Type == hclsyntax.TokenStringLit {
				if public.Match(tok.Bytes) {
					t.Errorf("%s:%d: public principal %q", p, tok.Range.Start.Line, tok.Bytes)
				}
			}
		}
	}
	for _, e := range environments {
		in := env(t, e, nil)
		for _, r := range check(in.AllResources("google_cloud_run_v2_service")).of(t) {
			ingress, _, err := r.Str("ingress")
			if err != nil {
				t.Fatal(err)
			}
			if ingress == "" || ingress == "INGRESS_TRAFFIC_ALL" {
				t.Errorf("%s: ingress %q: the loader must not be reachable from the internet", r.ID(), ingress)
			}
			if v, set, err := r.Attr("invoker_iam_disabled"); err != nil || (set && v.True()) {
				t.Errorf("%s: invoker IAM check disabled (%v)", r.ID(), err)
			}
		}
	}
}

func TestDeletionProtectionInProd(t *testing.T) {
	t.Parallel()
	in := env(t, "prod", nil)
	found := map[string]int{}
	for _, r := range check(in.AllResources("")).of(t) {
		switch r.Type {
		case "google_bigquery_dataset":
			found[r.Type]++
			v, set, err := r.Attr("delete_contents_on_destroy")
			if err != nil {
				t.Fatal(err)
			}
			if set && v.True() {
				t.Errorf("%s: delete_contents_on_destroy is true in prod", r.ID())
			}
		case "google_cloud_run_v2_service", "google_cloud_run_v2_job", "google_cloud_run_v2_worker_pool", "google_secret_manager_secret":
			found[r.Type]++
			v, set, err := r.Attr("deletion_protection")
			if err != nil {
				t.Fatal(err)
			}
			if !set || !v.True() {
				t.Errorf("%s: deletion_protection is not true in prod", r.ID())
			}
		default:
			// Any other resource that offers deletion protection must use it.
			if v, set, err := r.Attr("deletion_protection"); err != nil || (set && !v.True()) {
				t.Errorf("%s: deletion_protection is not true in prod (%v)", r.ID(), err)
			}
		}
	}
	want := map[string]int{"google_bigquery_dataset": 3, "google_cloud_run_v2_service": 1, "google_cloud_run_v2_job": 1, "google_cloud_run_v2_worker_pool": 1, "google_secret_manager_secret": 2}
	for typ, n := range want {
		if found[typ] != n {
			t.Errorf("prod: %d %s resources, want %d", found[typ], typ, n)
		}
	}
}

// traversalString renders an ignore_changes entry: template[0].containers[0].image.
func traversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.Number {
				b.WriteString("[" + s.Key.AsBigFloat().Text('f', -1) + "]")
			} else {
				b.WriteString("[" + strconv.Quote(s.Key.AsString()) + "]")
			}
		}
	}
	return b.String()
}

// One owner of the revisions: Terraform ignores the image of the loader
// service and the planner job, which cloudbuild.yaml deploys
// (TestCloudBuildDeploysWhatTerraformRuns).
func TestTerraformLeavesImagesToCloudBuild(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"google_cloud_run_v2_service":     "template[0].containers[0].image",
		"google_cloud_run_v2_job":         "template[0].template[0].containers[0].image",
		"google_cloud_run_v2_worker_pool": "template[0].containers[0].image",
	}
	for _, e := range environments {
		in := env(t, e, nil)
		for typ, path := range want {
			r := single(t, in, typ)
			var ignored []string
			for _, b := range r.Body.Blocks {
				if b.Type != "lifecycle" {
					continue
				}
				a, ok := b.Body.Attributes["ignore_changes"]
				if !ok {
					continue
				}
				exprs, diags := hcl.ExprList(a.Expr)
				if diags.HasErrors() {
					t.Fatalf("%s: ignore_changes: %s", r.ID(), diags.Error())
				}
				for _, x := range exprs {
					tr, diags := hcl.AbsTraversalForExpr(x)
					if diags.HasErrors() {
						t.Fatalf("%s: ignore_changes entry: %s", r.ID(), diags.Error())
					}
					ignored = append(ignored, traversalString(tr))
				}
			}
			sort.Strings(ignored)
			if i := sort.SearchStrings(ignored, path); i == len(ignored) || ignored[i] != path {
				t.Errorf("%s: lifecycle.ignore_changes %v lacks %s: Terraform and Cloud Build would fight over the image", r.ID(), ignored, path)
			}
		}
	}
}

// Terraform rejects a validation message that is not a sentence.
func TestValidationMessagesAreSentences(t *testing.T) {
	t.Parallel()
	n := 0
	for _, dir := range moduleDirs(t) {
		m := check(tfeval.LoadModule(dir)).of(t)
		for name, b := range m.Variables {
			for _, vb := range b.Body.Blocks {
				if vb.Type != "validation" {
					continue
				}
				n++
				v, diags := vb.Body.Attributes["error_message"].Expr.Value(nil)
				if diags.HasErrors() {
					t.Errorf("%s: %s: error_message must be a literal: %s", dir, name, diags.Error())
					continue
				}
				msg := v.AsString()
				if msg == "" || msg[0] < 'A' || msg[0] > 'Z' || !strings.HasSuffix(msg, ".") {
					t.Errorf("%s: %s: error_message %q must start with a capital letter and end with a period", dir, name, msg)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d validation blocks found", n)
	}
}
