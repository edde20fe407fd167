package deploycheck

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

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

		built, pushed := map[string]string{}, map[string]bool{}
		deployed := map[string]bool{}
		for _, st := range cb.Steps {
			args := make([]string, len(st.Args))
			for i, a := range st.Args {
				args[i] = check(expand(a, subst)).of(t)
			}
			switch {
			case strings.HasSuffix(st.Name, "/docker") && len(args) > 0 && args[0] == "build":
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
			case strings.HasSuffix(st.Name, "/docker") && len(args) > 0 && args[0] == "push":
				pushed[args[1]] = true
				for _, need := range []string{"vet", "test"} {
					if !cb.dependsOn(st.ID, need) {
						t.Errorf("step %s can push before %s passed", st.ID, need)
					}
				}
			case st.Entrypoint == "bash" || st.Entrypoint == "gcloud":
				script := strings.Join(args, " ")
				for _, rr := range run {
					verb := map[string]string{"loader": `gcloud run deploy (\S+)`, "planner": `gcloud run jobs update (\S+)`}[rr.binary]
					m := regexp.MustCompile(verb).FindStringSubmatch(script)
					if m == nil {
						continue
					}
					deployed[rr.binary] = true
					if m[1] != wantName[rr.binary] {
						t.Errorf("%s: step %s deploys %q, Terraform's %s is %q", e, st.ID, m[1], rr.binary, wantName[rr.binary])
					}
					if !strings.Contains(script, "--image="+wantImage[rr.binary]+" ") {
						t.Errorf("%s: step %s does not deploy image %s", e, st.ID, wantImage[rr.binary])
					}
					if !strings.Contains(script, "--region="+region) {
						t.Errorf("%s: step %s does not deploy in region %s", e, st.ID, region)
					}
					if !cb.dependsOn(st.ID, "push-"+rr.binary) {
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
		for _, im := range cb.Images {
			if x := check(expand(im, subst)).of(t); x != wantImage["loader"] && x != wantImage["planner"] {
				t.Errorf("%s: images lists %s, which Terraform does not run", e, x)
			}
		}
	}
}

// The build tests before anything ships, runs as the deployer (so logs go
// to Cloud Logging only) and declares every substitution it uses.
func TestCloudBuildSteps(t *testing.T) {
	t.Parallel()
	cb := loadCloudBuild(t)
	var vet, test bool
	for _, st := range cb.Steps {
		joined := st.Entrypoint + " " + strings.Join(st.Args, " ")
		vet = vet || (st.ID == "vet" && strings.Contains(joined, "go vet ./..."))
		test = test || (st.ID == "test" && regexp.MustCompile(`go test .*\./\.\.\.`).MatchString(joined))
	}
	if !vet || !test {
		t.Errorf("cloudbuild.yaml lacks the vet (%v) or test (%v) step", vet, test)
	}
	if cb.Options["logging"] != "CLOUD_LOGGING_ONLY" {
		t.Errorf("options.logging = %v: a build running as a user-managed service account needs CLOUD_LOGGING_ONLY (or a logs bucket)", cb.Options["logging"])
	}
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
	trig := single(t, in, "google_cloudbuild_trigger")
	if f, _, err := trig.Str("filename"); err != nil || f != "cloudbuild.yaml" {
		t.Errorf("the trigger builds %q (%v)", f, err)
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
	if !regexp.MustCompile(`(?m)^ARG GO_VERSION=` + regexp.QuoteMeta(goVersion[1]) + `$`).MatchString(df) {
		t.Errorf("Dockerfile's GO_VERSION is not go.mod's %s", goVersion[1])
	}
	for _, st := range loadCloudBuild(t).Steps {
		if strings.HasPrefix(st.Name, "golang:") && st.Name != "golang:"+goVersion[1] {
			t.Errorf("cloudbuild.yaml step %s runs %s, go.mod wants %s", st.ID, st.Name, goVersion[1])
		}
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build stage and a runtime stage", len(froms))
	}
	final := froms[len(froms)-1][1]
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
