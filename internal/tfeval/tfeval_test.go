package tfeval

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func root(t *testing.T, dir string, overrides map[string]cty.Value) *Instance {
	t.Helper()
	in, err := NewRoot("t", filepath.Join("testdata", dir), "", overrides)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func output(t *testing.T, in *Instance, name string) cty.Value {
	t.Helper()
	v, err := in.Output(name)
	if err != nil {
		t.Fatalf("output %s: %v", name, err)
	}
	return v
}

// Each count index and for_each key is its own instance, evaluated with its
// own count.index or each, and named by its key in placeholders.
func TestExpansionGivesEachInstanceItsOwnValues(t *testing.T) {
	t.Parallel()
	in := root(t, "expand", nil)
	for name, want := range map[string]cty.Value{
		"second": cty.StringVal("n-1"),
		"last":   cty.StringVal("n-2"),
		"zone_b": cty.StringVal("b=y"),
		"set_q":  cty.StringVal("Q"),
		"joined": cty.StringVal("n-0+n-2"),
		"ids": cty.TupleVal([]cty.Value{
			cty.StringVal("<t/terraform_data.n[0].id>"),
			cty.StringVal("<t/terraform_data.n[2].id>"),
		}),
		"child_id": cty.StringVal("<t.child/terraform_data.c.id>"),
	} {
		if got := output(t, in, name); !got.RawEquals(want) {
			t.Errorf("output %s = %#v, want %#v", name, got, want)
		}
	}
	// A different count changes which instance is last.
	in5 := root(t, "expand", map[string]cty.Value{"n": cty.NumberIntVal(5)})
	if got := output(t, in5, "last"); got.AsString() != "n-4" {
		t.Errorf("with n=5, last = %#v", got)
	}
	m := SymbolRE.FindStringSubmatch("<t/terraform_data.n[2].id>")
	if m == nil || m[1] != "t" || m[2] != "terraform_data" || m[3] != "n" || m[4] != "2" || m[5] != "id" {
		t.Errorf("SymbolRE parts %q", m)
	}
}

func TestResourcesExpand(t *testing.T) {
	t.Parallel()
	in := root(t, "expand", nil)
	rs, err := in.AllResources("terraform_data")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rs {
		v, _, err := r.Str("input")
		if err != nil {
			t.Fatal(err)
		}
		got[r.Where] = v
	}
	want := map[string]string{
		"t/terraform_data.n[0]":     "n-0",
		"t/terraform_data.n[1]":     "n-1",
		"t/terraform_data.n[2]":     "n-2",
		`t/terraform_data.z["a"]`:   "a=x",
		`t/terraform_data.z["b"]`:   "b=y",
		`t/terraform_data.set["p"]`: "P",
		`t/terraform_data.set["q"]`: "Q",
		"t.child/terraform_data.c":  "n-0+n-2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resources:\n got %v\nwant %v", got, want)
	}
}

func TestOptionalAttributesAndValidation(t *testing.T) {
	t.Parallel()
	in := root(t, "expand", nil)
	s := output(t, in, "settings")
	if s.GetAttr("size").AsBigFloat().String() != "10" || s.GetAttr("flags").LengthInt() != 0 {
		t.Errorf("settings = %#v: optional defaults not applied", s)
	}
	_, err := NewRoot("t", filepath.Join("testdata", "expand"), "", map[string]cty.Value{
		"settings": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("s"), "size": cty.NumberIntVal(-1)}),
	})
	if err == nil || !strings.Contains(err.Error(), "Settings.size must be positive.") {
		t.Errorf("a failing validation: %v", err)
	}
	if _, err := NewRoot("t", filepath.Join("testdata", "badvar"), "", nil); err == nil || !strings.Contains(err.Error(), "The size must be positive.") {
		t.Errorf("a default that fails validation: %v", err)
	}
	// Both operands of || are evaluated, as by the Terraform versions the
	// modules allow: a null compared fails.
	if _, err := NewRoot("t", filepath.Join("testdata", "logic"), "", nil); err == nil {
		t.Error("var.size == null || var.size > 0 evaluated for a null size")
	}
	if _, err := NewRoot("t", filepath.Join("testdata", "logic"), "", map[string]cty.Value{"size": cty.NumberIntVal(3)}); err != nil {
		t.Errorf("a positive size: %v", err)
	}
}

// Errors are never swallowed: an index the resource does not have, and an
// error anywhere in a child module whose value is read.
func TestErrorsSurface(t *testing.T) {
	t.Parallel()
	if _, err := root(t, "badindex", nil).Output("missing"); err == nil {
		t.Error("terraform_data.n[5] of a count of 3 evaluated")
	}
	if _, err := root(t, "childerr", nil).Output("all"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a broken child module read as a whole: %v", err)
	}
}

// terraformPlan plans the module in testdata/dir with Terraform itself
// (terraform_data needs no provider, so this runs offline) and returns its
// output changes.
func terraformPlan(t *testing.T, dir string) (map[string]map[string]any, error) {
	t.Helper()
	bin, err := exec.LookPath("terraform")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("terraform is not on PATH and CI is set: the evaluator cannot be compared with Terraform")
		}
		t.Skip("terraform is not on PATH: the comparison with Terraform needs it (Cloud Build provides it)")
	}
	work := t.TempDir()
	if err := os.CopyFS(work, os.DirFS(filepath.Join("testdata", dir))); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_CLI_CONFIG_FILE="+os.DevNull)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: stderr.Bytes()}
		}
		return out, nil
	}
	if _, err := run("init", "-backend=false", "-input=false"); err != nil {
		t.Fatalf("terraform init: %s", err.(*exec.ExitError).Stderr)
	}
	if _, err := run("plan", "-input=false", "-out=plan"); err != nil {
		return nil, err
	}
	js, err := run("show", "-json", "plan")
	if err != nil {
		t.Fatalf("terraform show: %v", err)
	}
	var plan struct {
		OutputChanges map[string]map[string]any `json:"output_changes"`
	}
	if err := json.Unmarshal(js, &plan); err != nil {
		t.Fatal(err)
	}
	return plan.OutputChanges, nil
}

// The evaluator agrees with Terraform: every output Terraform knows at
// plan time has the same value here, every one it does not know evaluates
// to placeholders, and what Terraform refuses to plan fails here too.
func TestAgreesWithTerraform(t *testing.T) {
	t.Parallel()
	changes, err := terraformPlan(t, "expand")
	if err != nil {
		t.Fatalf("terraform plan: %s", err.(*exec.ExitError).Stderr)
	}
	in := root(t, "expand", nil)
	if len(changes) != len(in.Mod.Outputs) {
		t.Fatalf("terraform planned %d outputs, the module has %d", len(changes), len(in.Mod.Outputs))
	}
	for name, ch := range changes {
		v := output(t, in, name)
		var unknown func(u any, v cty.Value) bool
		unknown = func(u any, v cty.Value) bool {
			switch u := u.(type) {
			case bool:
				if u {
					return v.Type() == cty.String && strings.HasPrefix(v.AsString(), "<")
				}
				return true
			case []any:
				for i, x := range u {
					if !unknown(x, v.Index(cty.NumberIntVal(int64(i)))) {
						return false
					}
				}
			}
			return true
		}
		if !unknown(ch["after_unknown"], v) {
			t.Errorf("output %s: terraform does not know %v at plan time, the evaluator says %#v", name, ch["after_unknown"], v)
		}
		if ch["after_unknown"] == false {
			js, err := ctyjson.Marshal(v, v.Type())
			if err != nil {
				t.Fatal(err)
			}
			var mine any
			if err := json.Unmarshal(js, &mine); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(mine, ch["after"]) {
				t.Errorf("output %s: terraform plans %v, the evaluator %v", name, ch["after"], mine)
			}
		}
	}
	// "logic": Terraform 1.11 (the version Cloud Build runs; the modules
	// allow ~> 1.9) evaluates both sides of ||.
	for _, dir := range []string{"badindex", "childerr", "badvar", "logic"} {
		if _, err := terraformPlan(t, dir); err == nil {
			t.Errorf("terraform plans testdata/%s, which the evaluator refuses", dir)
		}
	}
}
