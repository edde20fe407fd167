package deploycheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"
	"go.yaml.in/yaml/v3"

	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/tfeval"
)

// repo is the repository root (this package is internal/deploycheck).
func repo(t testing.TB, parts ...string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from the package directory: %v", err)
	}
	return filepath.Join(append([]string{root}, parts...)...)
}

// environments are the Terraform roots under terraform/envs.
var environments = []string{"dev", "prod"}

// env instantiates an environment with its example.tfvars (plus overrides).
func env(t testing.TB, name string, overrides map[string]cty.Value) *tfeval.Instance {
	t.Helper()
	dir := repo(t, "terraform", "envs", name)
	in, err := tfeval.NewRoot(name, dir, filepath.Join(dir, "example.tfvars"), overrides)
	if err != nil {
		t.Fatalf("environment %s: %v", name, err)
	}
	if err := in.CheckInputs(); err != nil {
		t.Fatalf("environment %s: %v", name, err)
	}
	return in
}

// checked holds a result until a test takes it: check(f()).of(t) fails
// the test when f returned an error.
type checked[T any] struct {
	v   T
	err error
}

func check[T any](v T, err error) checked[T] { return checked[T]{v, err} }

func (c checked[T]) of(t testing.TB) T {
	t.Helper()
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c.v
}

// varString reads a string variable of a root instance.
func varString(t testing.TB, in *tfeval.Instance, name string) string {
	t.Helper()
	v, ok := in.Vars[name]
	if !ok || v.IsNull() || v.Type() != cty.String {
		t.Fatalf("%s: var.%s is not a string", in.Path, name)
	}
	return v.AsString()
}

// single returns the one resource of type typ under in.
func single(t testing.TB, in *tfeval.Instance, typ string) tfeval.Resource {
	t.Helper()
	rs := check(in.AllResources(typ)).of(t)
	if len(rs) != 1 {
		t.Fatalf("%s: want exactly one %s, found %d", in.Path, typ, len(rs))
	}
	return rs[0]
}

// --- the binaries' configuration ---------------------------------------------

// binaryVars is every environment variable a binary reads, from its
// configuration struct in internal/config (the one the binary loads).
func binaryVars(t testing.TB, binary string) []config.Var {
	t.Helper()
	switch binary {
	case "loader":
		return config.Variables(&config.Loader{})
	case "planner":
		return config.Variables(&config.Planner{})
	}
	t.Fatalf("no binary %q", binary)
	return nil
}

// validateAs loads env the way binary does and runs its own validation
// as deployed: the loader serving push requests, the planner publishing.
func validateAs(binary string, env map[string]string) error {
	ctx := context.Background()
	lookup := envconfig.MapLookuper(env)
	switch binary {
	case "loader":
		var c config.Loader
		if err := config.Load(ctx, &c, lookup); err != nil {
			return err
		}
		return c.Validate(false)
	case "planner":
		var c config.Planner
		if err := config.Load(ctx, &c, lookup); err != nil {
			return err
		}
		return c.Validate(true)
	}
	return fmt.Errorf("no binary %q", binary)
}

// defaultOf is the default of variable name of a binary ("" when none).
func defaultOf(t testing.TB, binary, name string) string {
	t.Helper()
	for _, v := range binaryVars(t, binary) {
		if v.Name == name {
			return v.Default
		}
	}
	t.Fatalf("%s reads no %s", binary, name)
	return ""
}

// --- cloudbuild.yaml ---------------------------------------------------------

type buildStep struct {
	ID         string   `yaml:"id"`
	Name       string   `yaml:"name"`
	Entrypoint string   `yaml:"entrypoint"`
	Args       []string `yaml:"args"`
	WaitFor    []string `yaml:"waitFor"`
	Env        []string `yaml:"env"`
	Dir        string   `yaml:"dir"`
	Volumes    []struct {
		Name string `yaml:"name"`
		Path string `yaml:"path"`
	} `yaml:"volumes"`
}

type cloudBuild struct {
	Substitutions map[string]string `yaml:"substitutions"`
	Options       map[string]any    `yaml:"options"`
	Steps         []buildStep       `yaml:"steps"`
	Images        []string          `yaml:"images"`
}

func loadCloudBuild(t testing.TB) cloudBuild {
	t.Helper()
	src := check(os.ReadFile(repo(t, "cloudbuild.yaml"))).of(t)
	var cb cloudBuild
	dec := yaml.NewDecoder(strings.NewReader(string(src)))
	dec.KnownFields(true)
	if err := dec.Decode(&cb); err != nil {
		t.Fatalf("cloudbuild.yaml: %v", err)
	}
	return cb
}

// substRE matches Cloud Build substitutions: $NAME, ${NAME}; $$ escapes.
var substRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expand applies substitutions as Cloud Build does; an unknown name is an error.
func expand(s string, subst map[string]string) (string, error) {
	var missing []string
	out := substRE.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sm := substRE.FindStringSubmatch(m)
		name := sm[1] + sm[2]
		v, ok := subst[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for substitution %v in %q", missing, s)
	}
	return out, nil
}

// substitutionsUsed lists every substitution name the build refers to.
func (cb cloudBuild) substitutionsUsed() map[string]bool {
	used := map[string]bool{}
	add := func(s string) {
		for _, m := range substRE.FindAllStringSubmatch(s, -1) {
			if name := m[1] + m[2]; name != "" {
				used[name] = true
			}
		}
	}
	for _, st := range cb.Steps {
		add(st.Name)
		for _, a := range st.Args {
			add(a)
		}
	}
	for _, im := range cb.Images {
		add(im)
	}
	return used
}

// dependsOn reports whether step id waits, directly or not, for step dep:
// a step without waitFor waits for every step before it; "-" for none.
func (cb cloudBuild) dependsOn(id, dep string) bool {
	index := map[string]int{}
	for i, st := range cb.Steps {
		index[st.ID] = i
	}
	seen := map[int]bool{}
	var visit func(i int) bool
	visit = func(i int) bool {
		if seen[i] {
			return false
		}
		seen[i] = true
		var deps []int
		st := cb.Steps[i]
		switch {
		case len(st.WaitFor) == 0:
			for j := 0; j < i; j++ {
				deps = append(deps, j)
			}
		default:
			for _, w := range st.WaitFor {
				if w == "-" {
					continue
				}
				if j, ok := index[w]; ok {
					deps = append(deps, j)
				}
			}
		}
		for _, j := range deps {
			if cb.Steps[j].ID == dep || visit(j) {
				return true
			}
		}
		return false
	}
	i, ok := index[id]
	return ok && visit(i)
}
