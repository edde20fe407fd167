package deploycheck

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// The environment both binaries get is computed by modules/config, which
// needs no provider: Terraform itself plans it with the inputs the
// evaluator gave it (several tables, so SYNC_TABLES' JSON is included) and
// must render the same variables, byte for byte.
func TestConfigModuleAgreesWithTerraform(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("terraform")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("terraform is not on PATH and CI is set")
		}
		t.Skip("terraform is not on PATH: the comparison with Terraform needs it (Cloud Build provides it)")
	}
	tables := cty.TupleVal([]cty.Value{
		table("public.a", nil),
		table("audit.b", map[string]cty.Value{"dest_table": str("b_log"), "chunk_size": num(1000), "time_zone": str("Europe/Berlin")}),
	})
	in := env(t, "prod", map[string]cty.Value{"source_table": str(""), "tables": tables})
	cfg := check(check(in.Child("stack")).of(t).Child("config")).of(t)
	inputs := map[string]json.RawMessage{}
	for name := range cfg.Mod.Variables {
		v := check(cfg.Variable(name)).of(t)
		js, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			t.Fatal(err)
		}
		inputs[name] = js
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(repo(t, "terraform", "modules", "config"))); err != nil {
		t.Fatal(err)
	}
	tfvars, _ := json.Marshal(inputs)
	if err := os.WriteFile(filepath.Join(dir, "terraform.tfvars.json"), tfvars, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_CLI_CONFIG_FILE="+os.DevNull)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("terraform %v: %v\n%s%s", args, err, out, stderr)
		}
		return out
	}
	run("init", "-backend=false", "-input=false", "-no-color")
	run("plan", "-input=false", "-lock=false", "-no-color", "-out=plan")
	var plan struct {
		OutputChanges map[string]struct {
			After any `json:"after"`
		} `json:"output_changes"`
	}
	if err := json.Unmarshal(run("show", "-json", "plan"), &plan); err != nil {
		t.Fatal(err)
	}
	mine := check(cfg.Output("env")).of(t)
	js, err := ctyjson.Marshal(mine, mine.Type())
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	want := plan.OutputChanges["env"].After
	if !reflect.DeepEqual(got, want) {
		t.Errorf("modules/config's env:\n evaluator: %v\n terraform: %v", got, want)
	}
	if m, ok := want.(map[string]any); !ok || m["SYNC_TABLES"] == nil {
		t.Errorf("terraform rendered no SYNC_TABLES: %v", want)
	}
}
