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
	"mvdan.cc/sh/v3/syntax"

	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/pubsubx"
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
		return c.Validate(config.Serve)
	case "planner":
		var c config.Planner
		if err := config.Load(ctx, &c, lookup); err != nil {
			return err
		}
		return c.Validate(pubsubx.Publishes)
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
	Tags          []string          `yaml:"tags"`
	Timeout       string            `yaml:"timeout"`
	Substitutions map[string]string `yaml:"substitutions"`
	Options       map[string]any    `yaml:"options"`
	Steps         []buildStep       `yaml:"steps"`
	Images        []string          `yaml:"images"`
}

// loadCloudBuild reads cloudbuild.yaml, the deploy build.
func loadCloudBuild(t testing.TB) cloudBuild {
	t.Helper()
	return loadBuildFile(t, "cloudbuild.yaml")
}

// loadTestBuild reads cloudbuild-test.yaml, the test build.
func loadTestBuild(t testing.TB) cloudBuild {
	t.Helper()
	return loadBuildFile(t, "cloudbuild-test.yaml")
}

func loadBuildFile(t testing.TB, name string) cloudBuild {
	t.Helper()
	src := check(os.ReadFile(repo(t, name))).of(t)
	var cb cloudBuild
	dec := yaml.NewDecoder(strings.NewReader(string(src)))
	dec.KnownFields(true)
	if err := dec.Decode(&cb); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cb
}

// imageRepo is an image reference without its tag and digest:
// gcr.io/cloud-builders/docker@sha256:… is gcr.io/cloud-builders/docker.
func imageRepo(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// imageTag is an image reference's tag ("" when none).
func imageTag(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return ""
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

// step returns the build step with id.
func (cb cloudBuild) step(t testing.TB, id string) buildStep {
	t.Helper()
	for _, st := range cb.Steps {
		if st.ID == id {
			return st
		}
	}
	t.Fatalf("cloudbuild.yaml has no step %s", id)
	return buildStep{}
}

// --- shell -----------------------------------------------------------------

// command is one simple command of a shell script: its words (literal
// only; a word with an expansion is kept as "$?") and whether it runs as a
// top-level statement that stops the script on failure under `set -e`
// (not negated, not in the background, not a condition or part of a ||/&&
// list).
type command struct {
	args     []string
	topLevel bool
}

// parseShell parses a bash script into its simple commands and the
// variables it exports (NAME -> literal value, "$?" when not literal).
func parseShell(t testing.TB, name, script string) ([]command, map[string]string) {
	t.Helper()
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(script), name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	word := func(w *syntax.Word) string {
		if lit := w.Lit(); lit != "" || len(w.Parts) == 0 {
			return lit
		}
		if len(w.Parts) == 1 {
			switch p := w.Parts[0].(type) {
			case *syntax.SglQuoted:
				return p.Value
			case *syntax.DblQuoted:
				if len(p.Parts) == 1 {
					if l, ok := p.Parts[0].(*syntax.Lit); ok {
						return l.Value
					}
				}
			}
		}
		return "$?"
	}
	top := map[*syntax.Stmt]bool{}
	for _, st := range f.Stmts {
		if !st.Negated && !st.Background {
			top[st] = true
		}
	}
	var cmds []command
	exports := map[string]string{}
	syntax.Walk(f, func(n syntax.Node) bool {
		st, ok := n.(*syntax.Stmt)
		if !ok {
			return true
		}
		switch c := st.Cmd.(type) {
		case *syntax.CallExpr:
			cmd := command{topLevel: top[st]}
			for _, w := range c.Args {
				cmd.args = append(cmd.args, word(w))
			}
			cmds = append(cmds, cmd)
		case *syntax.DeclClause:
			if c.Variant.Value == "export" {
				for _, a := range c.Args {
					if a.Name != nil && a.Value != nil {
						exports[a.Name.Value] = word(a.Value)
					}
				}
			}
		}
		return true
	})
	return cmds, exports
}

// runs reports whether cmds has args as a top-level command.
func runs(cmds []command, args ...string) bool {
	for _, c := range cmds {
		if c.topLevel && strings.Join(c.args, "\x00") == strings.Join(args, "\x00") {
			return true
		}
	}
	return false
}
