package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgbq/pgbq/internal/testenv"
	"github.com/pgbq/pgbq/internal/tfeval"
)

// buildSubstitutions is what a build of environment e gets: the trigger's
// substitutions as Terraform creates them, cloudbuild.yaml's defaults for
// the rest, and the built-ins.
func buildSubstitutions(t *testing.T, cb cloudBuild, in *tfeval.Instance) map[string]string {
	t.Helper()
	build := check(check(in.Child("stack")).of(t).Child("build")).of(t)
	fromTF := check(build.Variable("substitutions")).of(t)
	subst := map[string]string{}
	for k, v := range cb.Substitutions {
		subst[k] = v
	}
	used := cb.substitutionsUsed()
	for it := fromTF.ElementIterator(); it.Next(); {
		k, v := it.Element()
		if _, declared := cb.Substitutions[k.AsString()]; !declared || !used[k.AsString()] {
			// Cloud Build rejects a trigger substitution the build does not use.
			t.Errorf("%s: the trigger passes %s, which cloudbuild.yaml does not declare and use", in.Path, k.AsString())
		}
		subst[k.AsString()] = v.AsString()
	}
	subst["PROJECT_ID"] = varString(t, in, "project_id")
	subst["COMMIT_SHA"] = varString(t, in, "image_tag")
	return subst
}

// The images cloudbuild.yaml builds, pushes and deploys are the ones the
// Terraform resources run, and it deploys to the resources Terraform
// creates, in their region.
func TestCloudBuildDeploysWhatTerraformRuns(t *testing.T) {
	t.Parallel()
	cb := loadCloudBuild(t)
	for _, e := range environments {
		in := env(t, e, nil)
		subst := buildSubstitutions(t, cb, in)
		if subst["_ENV"] != e {
			t.Errorf("%s: the trigger builds _ENV=%q", e, subst["_ENV"])
		}
		region := varString(t, in, "region")
		run := cloudRun(t, in)
		wantImage, wantName := map[string]string{}, map[string]string{}
		for _, rr := range run {
			img, _, err := rr.container.Str("image")
			if err != nil {
				t.Fatal(err)
			}
			wantImage[rr.binary] = img
			wantName[rr.binary], _, err = rr.resource.Str("name")
			if err != nil {
				t.Fatal(err)
			}
		}

		// The back-fill worker pool runs the loader's image.
		pool := single(t, in, "google_cloud_run_v2_worker_pool")
		poolTmpl := check(pool.One("template")).of(t)
		wantImage["loader-pool"], _, _ = check(poolTmpl.One("containers")).of(t).Str("image")
		wantName["loader-pool"], _, _ = pool.Str("name")
		if wantImage["loader-pool"] != wantImage["loader"] {
			t.Errorf("%s: the worker pool starts from %s, the loader service from %s", e, wantImage["loader-pool"], wantImage["loader"])
		}

		built, pushed := map[string]string{}, map[string]bool{}
		deployed := map[string]bool{}
		for _, st := range cb.Steps {
			args := make([]string, len(st.Args))
			for i, a := range st.Args {
				args[i] = check(expand(a, subst)).of(t)
			}
			switch {
			case strings.HasSuffix(imageRepo(st.Name), "/docker") && len(args) > 0 && args[0] == "build":
				var binary, tag string
				for i, a := range args {
					if v, ok := strings.CutPrefix(a, "--build-arg=BINARY="); ok {
						binary = v
					}
					if a == "--build-arg" && i+1 < len(args) {
						binary, _ = strings.CutPrefix(args[i+1], "BINARY=")
					}
					if v, ok := strings.CutPrefix(a, "--tag="); ok {
						tag = v
					}
					if (a == "-t" || a == "--tag") && i+1 < len(args) {
						tag = args[i+1]
					}
				}
				if binary == "" || tag == "" {
					t.Errorf("step %s builds without BINARY or a tag", st.ID)
					continue
				}
				built[binary] = tag
				if !strings.HasPrefix(tag, region+"-docker.pkg.dev/") {
					t.Errorf("%s: step %s pushes to %s, not the environment's region %s", e, st.ID, tag, region)
				}
			case st.Entrypoint == "bash" && len(args) == 2:
				cmds, _ := parseShell(t, "step "+st.ID, args[1])
				for _, c := range cmds {
					if len(c.args) == 3 && c.args[0] == "docker" && c.args[1] == "push" {
						pushed[c.args[2]] = true
						if !cb.dependsOn(st.ID, "tested") {
							t.Errorf("step %s can push before the test build of its commit passed", st.ID)
						}
					}
					binary := ""
					switch {
					case len(c.args) > 4 && strings.Join(c.args[:3], " ") == "gcloud run deploy":
						binary = "loader"
					case len(c.args) > 5 && strings.Join(c.args[:4], " ") == "gcloud run jobs update":
						binary = "planner"
					case len(c.args) > 6 && strings.Join(c.args[:5], " ") == "gcloud beta run worker-pools deploy":
						binary = "loader-pool"
					default:
						continue
					}
					if !c.topLevel {
						t.Errorf("%s: step %s deploys the %s conditionally: %q", e, st.ID, binary, c.args)
					}
					deployed[binary] = true
					name := c.args[map[string]int{"loader": 3, "planner": 4, "loader-pool": 5}[binary]]
					if name != wantName[binary] {
						t.Errorf("%s: step %s deploys %q, Terraform's %s is %q", e, st.ID, name, binary, wantName[binary])
					}
					if !contains(c.args, "--image="+wantImage[binary]) {
						t.Errorf("%s: step %s does not deploy image %s: %q", e, st.ID, wantImage[binary], c.args)
					}
					if !contains(c.args, "--region="+region) {
						t.Errorf("%s: step %s does not deploy in region %s", e, st.ID, region)
					}
					if !cb.dependsOn(st.ID, "push-"+strings.TrimSuffix(binary, "-pool")) {
						t.Errorf("step %s can deploy before its image is pushed", st.ID)
					}
				}
			}
		}
		for _, rr := range run {
			if built[rr.binary] != wantImage[rr.binary] {
				t.Errorf("%s: cloudbuild.yaml builds %s as %q, Terraform runs %q", e, rr.binary, built[rr.binary], wantImage[rr.binary])
			}
			if !pushed[wantImage[rr.binary]] {
				t.Errorf("%s: cloudbuild.yaml never pushes %s", e, wantImage[rr.binary])
			}
			if !deployed[rr.binary] {
				t.Errorf("%s: cloudbuild.yaml never deploys the %s", e, rr.binary)
			}
		}
		if !deployed["loader-pool"] {
			t.Errorf("%s: cloudbuild.yaml never deploys the back-fill worker pool", e)
		}
		// No images list: Cloud Build would push them again at the end,
		// which an immutable tag refuses on a rebuild of the commit.
		if len(cb.Images) != 0 {
			t.Errorf("%s: cloudbuild.yaml lists images %v: Cloud Build pushes them after the steps, past the push steps' handling of an immutable tag", e, cb.Images)
		}
	}
}

// The test build vets and tests; both builds run as user-managed service
// accounts (so logs go to Cloud Logging only), have time for the tests
// (the deploy build waits for them) and declare every substitution they use.
func TestCloudBuildSteps(t *testing.T) {
	t.Parallel()
	tb := loadTestBuild(t)
	if vet := tb.step(t, "vet"); vet.Entrypoint != "go" || strings.Join(vet.Args, " ") != "vet ./..." {
		t.Errorf("step vet runs %s %q, want go vet ./...", vet.Entrypoint, vet.Args)
	}
	for name, b := range map[string]cloudBuild{"cloudbuild-test.yaml": tb, "cloudbuild.yaml": loadCloudBuild(t)} {
		if d, err := time.ParseDuration(b.Timeout); err != nil || d < 30*time.Minute {
			t.Errorf("%s: timeout %q: the integration tests alone may take 20 minutes (dev/test.sh); Cloud Build's default is 10", name, b.Timeout)
		}
		if b.Options["logging"] != "CLOUD_LOGGING_ONLY" {
			t.Errorf("%s: options.logging = %v: a build running as a user-managed service account needs CLOUD_LOGGING_ONLY (or a logs bucket)", name, b.Options["logging"])
		}
		builtins := map[string]bool{"PROJECT_ID": true, "COMMIT_SHA": true, "SHORT_SHA": true, "BUILD_ID": true, "PROJECT_NUMBER": true, "LOCATION": true}
		for sub := range b.substitutionsUsed() {
			if _, ok := b.Substitutions[sub]; !ok && !builtins[sub] {
				t.Errorf("%s uses $%s without declaring it", name, sub)
			}
		}
	}
	cb := loadCloudBuild(t)
	builtins := map[string]bool{"PROJECT_ID": true, "COMMIT_SHA": true, "SHORT_SHA": true, "BUILD_ID": true, "PROJECT_NUMBER": true, "LOCATION": true}
	for name := range cb.substitutionsUsed() {
		if _, ok := cb.Substitutions[name]; !ok && !builtins[name] {
			t.Errorf("cloudbuild.yaml uses $%s without declaring it", name)
		}
	}
	for _, want := range []string{"_ENV", "_REGION"} {
		if _, ok := cb.Substitutions[want]; !ok {
			t.Errorf("cloudbuild.yaml has no %s substitution", want)
		}
	}
	// The trigger Terraform creates passes exactly what the file declares.
	trigger := cty.ObjectVal(map[string]cty.Value{
		"repository": cty.StringVal("projects/p/locations/us-central1/connections/gh/repositories/pgbq"),
		"tag_regex":  cty.StringVal("^v.*$"),
	})
	in := env(t, "prod", map[string]cty.Value{"build_trigger": trigger})
	files := map[string]string{}
	for _, trig := range check(in.AllResources("google_cloudbuild_trigger")).of(t) {
		f, _, err := trig.Str("filename")
		if err != nil {
			t.Fatal(err)
		}
		files[trig.Name] = f
	}
	if files["deploy"] != "cloudbuild.yaml" || files["test"] != "cloudbuild-test.yaml" {
		t.Errorf("the triggers build %v, want deploy: cloudbuild.yaml, test: cloudbuild-test.yaml", files)
	}
}

// stepEnv is a step's env list as a map.
func stepEnv(st buildStep) map[string]string {
	out := map[string]string{}
	for _, kv := range st.Env {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// The test step is the deploy gate: it runs `make test` (the stack and
// every test, integration tests included) with CI set, so a test whose
// PostgreSQL, emulator or terraform is missing fails instead of skipping;
// terraform is on its PATH. What `make test` runs is read from the
// Makefile and dev/test.sh: the variables internal/testenv reads, then
// go test over every package.
func TestCloudBuildTestStepRunsEverything(t *testing.T) {
	t.Parallel()
	cb := loadTestBuild(t)
	st := cb.step(t, "test")
	if st.Entrypoint != "bash" || len(st.Args) != 2 || !strings.HasPrefix(st.Args[0], "-") || !strings.Contains(st.Args[0], "c") || !strings.Contains(st.Args[0], "e") {
		t.Fatalf("step test: want bash -ce SCRIPT, got %s %q", st.Entrypoint, st.Args)
	}
	cmds, _ := parseShell(t, "cloudbuild.yaml step test", st.Args[1])
	if !runs(cmds, "make", "test") {
		t.Errorf("step test does not run `make test` as a top-level command: %v", cmds)
	}
	envs := stepEnv(st)
	if envs["CI"] == "" {
		t.Errorf("step test does not set CI: tests missing a dependency would skip instead of failing")
	}

	// terraform: copied by an earlier step into a volume the test step
	// mounts at the same path, on its PATH.
	tfStep := cb.step(t, "terraform-binary")
	if imageRepo(tfStep.Name) != "hashicorp/terraform" || len(tfStep.Args) != 2 {
		t.Fatalf("step terraform-binary: %s %q", tfStep.Name, tfStep.Args)
	}
	tfCmds, _ := parseShell(t, "step terraform-binary", tfStep.Args[1])
	var tfDir string
	for _, c := range tfCmds {
		if c.topLevel && len(c.args) == 3 && c.args[0] == "cp" && c.args[1] == "/bin/terraform" {
			tfDir = strings.TrimSuffix(c.args[2], "/terraform")
		}
	}
	volumeAt := func(st buildStep, path string) string {
		for _, v := range st.Volumes {
			if v.Path == path {
				return v.Name
			}
		}
		return ""
	}
	switch {
	case tfDir == "":
		t.Errorf("step terraform-binary does not copy /bin/terraform: %v", tfCmds)
	case volumeAt(tfStep, tfDir) == "" || volumeAt(tfStep, tfDir) != volumeAt(st, tfDir):
		t.Errorf("terraform is copied to %s, which is not a volume both steps mount", tfDir)
	case !contains(strings.Split(envs["PATH"], ":"), tfDir):
		t.Errorf("step test's PATH %q lacks %s, where terraform is", envs["PATH"], tfDir)
	}
	if !cb.dependsOn("test", "terraform-binary") {
		t.Error("step test can start before terraform is copied")
	}

	// make test: the recipe of the Makefile's test target.
	mk := string(check(os.ReadFile(repo(t, "Makefile"))).of(t))
	var recipe []string
	inTest := false
	for _, line := range strings.Split(mk, "\n") {
		switch {
		case strings.HasPrefix(line, "test:"):
			inTest = true
		case inTest && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimPrefix(line, "\t"))
		case inTest && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#"):
			inTest = false
		}
	}
	mkCmds, _ := parseShell(t, "Makefile test", strings.Join(recipe, "\n"))
	if !runs(mkCmds, "bash", "dev/test.sh") {
		t.Fatalf("make test does not run dev/test.sh: %q", recipe)
	}
	script := string(check(os.ReadFile(repo(t, "dev", "test.sh"))).of(t))
	shCmds, exports := parseShell(t, "dev/test.sh", script)
	for _, name := range []string{testenv.EnvPG, testenv.EnvBQ, testenv.EnvBQProject} {
		if _, ok := exports[name]; !ok {
			t.Errorf("dev/test.sh does not export %s, which internal/testenv reads: the integration tests would not find the stack", name)
		}
	}
	if !runs(shCmds, "stack_start") {
		t.Error("dev/test.sh does not start the stack")
	}
	goTest := false
	for _, c := range shCmds {
		if c.topLevel && len(c.args) > 2 && c.args[0] == "go" && c.args[1] == "test" && c.args[len(c.args)-1] == "./..." {
			goTest = true
		}
	}
	if !goTest {
		t.Error("dev/test.sh does not run go test over ./...")
	}
}

// terraformVersion is the version of a hashicorp/terraform step image.
func terraformVersion(t *testing.T, st buildStep) (major, minor int) {
	t.Helper()
	v := imageTag(st.Name)
	m := regexp.MustCompile(`^([0-9]+)\.([0-9]+)\.[0-9]+$`).FindStringSubmatch(v)
	if imageRepo(st.Name) != "hashicorp/terraform" || m == nil {
		t.Fatalf("step %s: image %s is not a pinned hashicorp/terraform:X.Y.Z", st.ID, st.Name)
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor
}

// Cloud Build runs Terraform itself on what the offline checks evaluate:
// fmt over terraform/, and for each environment init without a backend,
// validate, and `terraform test` (tests/*.tftest.hcl, a mock google
// provider), in the test build, which the deploy build waits for.
func TestCloudBuildRunsTerraform(t *testing.T) {
	t.Parallel()
	cb := loadTestBuild(t)
	fmtStep := cb.step(t, "terraform-fmt")
	if strings.Join(fmtStep.Args, " ") != "fmt -check -recursive terraform" || fmtStep.Entrypoint != "" {
		t.Errorf("step terraform-fmt runs %q", fmtStep.Args)
	}
	for _, st := range cb.Steps {
		if imageRepo(st.Name) == "hashicorp/terraform" {
			// mock_provider needs 1.7; the modules want ~> 1.9.
			if major, minor := terraformVersion(t, st); major != 1 || minor < 9 {
				t.Errorf("step %s runs terraform %d.%d; the modules require ~> 1.9", st.ID, major, minor)
			}
		}
	}
	for _, e := range environments {
		chdir := "-chdir=terraform/envs/" + e
		want := map[string][]string{
			"terraform-init-" + e:     {chdir, "init", "-backend=false", "-input=false"},
			"terraform-validate-" + e: {chdir, "validate"},
			"terraform-test-" + e:     {chdir, "test"},
		}
		for id, args := range want {
			st := cb.step(t, id)
			if st.Entrypoint != "" || strings.Join(st.Args, " ") != strings.Join(args, " ") {
				t.Errorf("step %s runs %s %q, want terraform %q", id, st.Entrypoint, st.Args, args)
			}
		}
		if !cb.dependsOn("terraform-validate-"+e, "terraform-init-"+e) || !cb.dependsOn("terraform-test-"+e, "terraform-validate-"+e) {
			t.Errorf("%s: validate and test must run after init", e)
		}
		// The build that does not pass unless these do.
		for _, need := range []string{"vet", "test", "terraform-fmt", "terraform-test-" + e} {
			cb.step(t, need)
		}
		tests, err := filepath.Glob(repo(t, "terraform", "envs", e, "tests", "*.tftest.hcl"))
		if err != nil || len(tests) == 0 {
			t.Errorf("%s: no tests/*.tftest.hcl for terraform test (%v)", e, err)
		}
		for _, p := range tests {
			checkTerraformTest(t, e, p)
		}
	}
}

// checkTerraformTest holds a .tftest.hcl file to what `terraform test` in
// Cloud Build needs: a mock google provider (no credentials there), at
// least one run that plans, and the environment's example.tfvars values
// (so it plans what the offline checks evaluate).
func checkTerraformTest(t *testing.T, e, path string) {
	t.Helper()
	src := check(os.ReadFile(path)).of(t)
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", path, diags.Error())
	}
	body := f.Body.(*hclsyntax.Body)
	var mock, plans bool
	var vars map[string]cty.Value
	for _, b := range body.Blocks {
		switch b.Type {
		case "mock_provider":
			mock = mock || (len(b.Labels) == 1 && b.Labels[0] == "google")
		case "variables":
			vars = map[string]cty.Value{}
			for name, a := range b.Body.Attributes {
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("%s: variables.%s: %s", path, name, diags.Error())
				}
				vars[name] = v
			}
		case "run":
			if a, ok := b.Body.Attributes["command"]; ok && hcl.ExprAsKeyword(a.Expr) == "plan" {
				plans = true
			}
		}
	}
	if !mock {
		t.Errorf("%s: no mock_provider \"google\": terraform test would need credentials", path)
	}
	if !plans {
		t.Errorf("%s: no run with command = plan", path)
	}
	// Same values as example.tfvars: instantiate both and compare the
	// evaluated variables.
	dir := repo(t, "terraform", "envs", e)
	fromTest, err := tfeval.NewRoot(e, dir, "", vars)
	if err != nil {
		t.Errorf("%s: its variables do not instantiate %s: %v", path, e, err)
		return
	}
	example := env(t, e, nil)
	for name, v := range example.Vars {
		if w := fromTest.Vars[name]; !w.RawEquals(v) {
			t.Errorf("%s: variable %s = %#v, example.tfvars gives %#v", path, name, w, v)
		}
	}
}

// One multi-stage Dockerfile builds both binaries: static, non-root, on the
// Go version go.mod names and cloudbuild.yaml tests with.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	df := string(check(os.ReadFile(repo(t, "Dockerfile"))).of(t))
	gomod := string(check(os.ReadFile(repo(t, "go.mod"))).of(t))
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	goImage := regexp.MustCompile(`(?m)^ARG GO_IMAGE=(\S+)$`).FindStringSubmatch(df)
	if goImage == nil || imageRepo(goImage[1]) != "golang" || !strings.HasPrefix(imageTag(goImage[1]), goVersion[1]+"-") && imageTag(goImage[1]) != goVersion[1] {
		t.Errorf("Dockerfile's GO_IMAGE %v is not golang at go.mod's %s", goImage, goVersion[1])
	}
	for _, st := range append(loadCloudBuild(t).Steps, loadTestBuild(t).Steps...) {
		if imageRepo(st.Name) == "golang" && (goImage == nil || st.Name != goImage[1]) {
			t.Errorf("build step %s runs %s, the Dockerfile builds with %v", st.ID, st.Name, goImage)
		}
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build stage and a runtime stage", len(froms))
	}
	final := dockerfileImage(df, froms[len(froms)-1][1])
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("runtime image %s is not distroless/static or scratch", final)
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 || regexp.MustCompile(`^(0|root)(:|$)`).MatchString(users[len(users)-1][1]) {
		t.Errorf("Dockerfile does not end as a non-root USER: %v", users)
	}
	for _, want := range []string{"ARG BINARY", "CGO_ENABLED=0", `"./${BINARY}"`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
}

// Loaders only read BigQuery metadata at start (fifty instances creating
// tables would meet BigQuery's metadata rate limits): Cloud Build runs
// `planner migrate` with the new planner image before any loader deploys.
func TestCloudBuildMigratesBeforeLoadersDeploy(t *testing.T) {
	t.Parallel()
	cb := loadCloudBuild(t)
	m := cb.step(t, "migrate")
	script := strings.Join(m.Args, " ")
	if !strings.Contains(script, "gcloud run jobs execute") || !strings.Contains(script, "--args=migrate") || !strings.Contains(script, "--wait") {
		t.Errorf("step migrate does not execute the planner job with --args=migrate --wait: %s", script)
	}
	if !slices.Contains(m.WaitFor, "deploy-planner") {
		t.Errorf("step migrate waits for %v, want deploy-planner (the new image's migrate)", m.WaitFor)
	}
	for _, id := range []string{"deploy-loader", "deploy-loader-pool"} {
		if st := cb.step(t, id); !slices.Contains(st.WaitFor, "migrate") {
			t.Errorf("step %s waits for %v, want migrate", id, st.WaitFor)
		}
	}
}

// dockerfileImage resolves a FROM argument of the form ${ARG} to the ARG's
// default.
func dockerfileImage(df, from string) string {
	if name, ok := strings.CutPrefix(from, "${"); ok {
		name = strings.TrimSuffix(name, "}")
		if m := regexp.MustCompile(`(?m)^ARG ` + regexp.QuoteMeta(name) + `=(\S+)$`).FindStringSubmatch(df); m != nil {
			return m[1]
		}
	}
	return from
}

// digestRE is an image pinned by digest.
var digestRE = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// Every image a build step runs and every base image is pinned by digest:
// a tag can be moved to other bytes, which would then run with the build's
// identity or ship in the images (issue 28). No docker build passes another
// base image. The test build's Debian packages are pinned to versions.
func TestBuildImagesPinnedByDigest(t *testing.T) {
	t.Parallel()
	for name, b := range map[string]cloudBuild{"cloudbuild.yaml": loadCloudBuild(t), "cloudbuild-test.yaml": loadTestBuild(t)} {
		for _, st := range b.Steps {
			if !digestRE.MatchString(st.Name) {
				t.Errorf("%s: step %s runs %s, not pinned by digest", name, st.ID, st.Name)
			}
			for _, a := range st.Args {
				if strings.Contains(a, "GO_IMAGE") || strings.Contains(a, "RUNTIME_IMAGE") {
					t.Errorf("%s: step %s chooses a base image (%s): the Dockerfile's digests are the ones", name, st.ID, a)
				}
			}
			if st.Entrypoint != "bash" || len(st.Args) != 2 {
				continue
			}
			// Cloud Build turns $$ into $ before the shell sees it.
			cmds, _ := parseShell(t, name+" step "+st.ID, strings.ReplaceAll(st.Args[1], "$$", "$"))
			for _, c := range cmds {
				if len(c.args) < 2 || c.args[0] != "apt-get" || c.args[1] != "install" {
					continue
				}
				for _, a := range c.args[2:] {
					if !strings.HasPrefix(a, "-") && !regexp.MustCompile(`^[a-z0-9.+-]+=[0-9][A-Za-z0-9.+~:-]*$`).MatchString(a) {
						t.Errorf("%s: step %s installs %q without a pinned version", name, st.ID, a)
					}
				}
			}
		}
	}
	df := string(check(os.ReadFile(repo(t, "Dockerfile"))).of(t))
	for _, m := range regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1) {
		if img := dockerfileImage(df, m[1]); !digestRE.MatchString(img) {
			t.Errorf("Dockerfile: FROM %s (%s) is not pinned by digest", m[1], img)
		}
	}
}

// The deploy build holds deploy rights and runs no tests: it waits for the
// test build of its commit (tagged, as cloudbuild-test.yaml tags itself)
// and pushes nothing before; only the builder images run in it.
func TestDeployWaitsForTheTestBuild(t *testing.T) {
	t.Parallel()
	cb, tb := loadCloudBuild(t), loadTestBuild(t)
	if len(tb.Tags) != 1 {
		t.Fatalf("cloudbuild-test.yaml has tags %v, want one the deploy build finds it by", tb.Tags)
	}
	gate := cb.step(t, "tested")
	script := strings.Join(gate.Args, " ")
	for _, want := range []string{"gcloud builds list", "tags=" + tb.Tags[0], "substitutions.COMMIT_SHA=${COMMIT_SHA}", "SUCCESS", "exit 1"} {
		if !strings.Contains(script, want) {
			t.Errorf("step tested does not %q: %s", want, script)
		}
	}
	for _, st := range cb.Steps {
		switch repo := imageRepo(st.Name); repo {
		case "gcr.io/cloud-builders/docker", "gcr.io/google.com/cloudsdktool/cloud-sdk":
		default:
			t.Errorf("cloudbuild.yaml: step %s runs %s: the deploy build runs the builders only (tests go in cloudbuild-test.yaml)", st.ID, repo)
		}
		if strings.HasPrefix(st.ID, "push-") && !cb.dependsOn(st.ID, "tested") {
			t.Errorf("cloudbuild.yaml: step %s can push before the test build passed", st.ID)
		}
	}
}
