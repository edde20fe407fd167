package deploycheck

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"
	"go.yaml.in/yaml/v3"

	"github.com/pgbq/pgbq/internal/config"
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
func env(t testing.TB, name string, overrides map[string]cty.Value) *instance {
	t.Helper()
	dir := repo(t, "terraform", "envs", name)
	in, err := newRoot(name, dir, filepath.Join(dir, "example.tfvars"), overrides)
	if err != nil {
		t.Fatalf("environment %s: %v", name, err)
	}
	if err := in.checkInputs(); err != nil {
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
func varString(t testing.TB, in *instance, name string) string {
	t.Helper()
	v, ok := in.vars[name]
	if !ok || v.IsNull() || v.Type() != cty.String {
		t.Fatalf("%s: var.%s is not a string", in.path, name)
	}
	return v.AsString()
}

// single returns the one resource of type typ under in.
func single(t testing.TB, in *instance, typ string) resource {
	t.Helper()
	rs := check(in.allResources(typ)).of(t)
	if len(rs) != 1 {
		t.Fatalf("%s: want exactly one %s, found %d", in.path, typ, len(rs))
	}
	return rs[0]
}

// --- the binaries' configuration ---------------------------------------------

// binaryVars is every environment variable a binary reads: the shared
// config.Common (by reflection on its go-envconfig tags) plus the fields of
// the binary's own Config struct in package main, read from its source.
func binaryVars(t testing.TB, binary string) []config.Var {
	t.Helper()
	own, err := mainConfigVars(repo(t, binary, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	return append(config.Variables(&config.Common{}), own...)
}

// mainConfigVars reads the env tags of `type Config struct` in a main
// package's source file. A field without a tag must be config.Common (read
// by reflection instead); anything else is an error, so a new nested struct
// cannot hide variables from these tests.
func mainConfigVars(file string) ([]config.Var, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var st *ast.StructType
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == "Config" {
			st, _ = ts.Type.(*ast.StructType)
		}
		return st == nil
	})
	if st == nil {
		return nil, fmt.Errorf("%s: no `type Config struct`", file)
	}
	var out []config.Var
	for _, field := range st.Fields.List {
		if field.Tag == nil {
			if sel, ok := field.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Common" {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "config" {
					continue
				}
			}
			return nil, fmt.Errorf("%s: Config field %v has no env tag and is not config.Common", file, field.Names)
		}
		raw, err := strconv.Unquote(field.Tag.Value)
		if err != nil {
			return nil, err
		}
		tag, ok := reflect.StructTag(raw).Lookup("env")
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("%s: Config field %v: nested env structs are not read here", file, field.Names)
		}
		v := config.Var{Name: name, Path: fmt.Sprint(field.Names)}
		for _, o := range strings.Split(opts, ",") {
			if d, ok := strings.CutPrefix(strings.TrimSpace(o), "default="); ok {
				v.Default = d
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// goDurationConst reads `const name = N * time.Unit` from a Go source file.
func goDurationConst(file, name string) (time.Duration, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return 0, err
	}
	units := map[string]time.Duration{"Millisecond": time.Millisecond, "Second": time.Second, "Minute": time.Minute, "Hour": time.Hour}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name != name || i >= len(vs.Values) {
					continue
				}
				be, ok := vs.Values[i].(*ast.BinaryExpr)
				if !ok || be.Op != token.MUL {
					return 0, fmt.Errorf("%s: %s is not N * time.Unit", file, name)
				}
				lit, ok1 := be.X.(*ast.BasicLit)
				sel, ok2 := be.Y.(*ast.SelectorExpr)
				if !ok1 || !ok2 || lit.Kind != token.INT || units[sel.Sel.Name] == 0 {
					return 0, fmt.Errorf("%s: %s is not N * time.Unit", file, name)
				}
				n, err := strconv.ParseInt(lit.Value, 10, 64)
				if err != nil {
					return 0, err
				}
				return time.Duration(n) * units[sel.Sel.Name], nil
			}
		}
	}
	return 0, fmt.Errorf("%s: no const %s", file, name)
}

// requiredVars are the variables without a default that a deployed binary
// cannot start without, found by asking the configuration model itself:
// validate an empty environment the way the push loader and the publishing
// planner do, and collect the variables its errors call required.
func requiredVars(t testing.TB) []string {
	t.Helper()
	var c config.Common
	if err := config.Load(context.Background(), &c, envconfig.MapLookuper(map[string]string{})); err != nil {
		t.Fatalf("load an empty configuration: %v", err)
	}
	c.Normalize()
	err := c.Validate(true, false)
	if err == nil {
		t.Fatal("an empty configuration validates: no required variables can be derived")
	}
	var req []string
	for _, v := range config.Variables(&config.Common{}) {
		if v.Default == "" && strings.Contains(err.Error(), v.Name+" is required") {
			req = append(req, v.Name)
		}
	}
	return req
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
