package docscheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/config"
)

// Every relative link of the README and the docs leads somewhere: the
// file exists, and an #anchor names a heading of that page.
func TestLinksResolve(t *testing.T) {
	t.Parallel()
	root := Root(t)
	for _, p := range LinkProblems(root, Pages(t, root)) {
		t.Error(p)
	}
}

// Every `make X` the docs show is a target of the Makefile.
func TestMakeTargetsExist(t *testing.T) {
	t.Parallel()
	root := Root(t)
	mf, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range MakeProblems(MakeTargets(string(mf)), Load(t, root, Pages(t, root))) {
		t.Error(p)
	}
}

// What the docs name in the code — paths, identifiers of internal
// packages, tests — exists.
func TestNamedCodeExists(t *testing.T) {
	t.Parallel()
	root := Root(t)
	problems, err := CodeProblems(root, Load(t, root, Pages(t, root)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// Where the code, Terraform, scripts and build files point into the docs
// ("docs/types.md, \"Rows without a date\""), the page and heading exist.
func TestRefsIntoDocsResolve(t *testing.T) {
	t.Parallel()
	problems, err := RefProblems(Root(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// docs/configuration.md has a row for every variable either binary reads,
// with its default, and says which binary reads it.
func TestConfigurationListsEveryVariable(t *testing.T) {
	t.Parallel()
	root := Root(t)
	page, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range VariableProblems(string(page), Variables(), UsedBy()) {
		t.Error(p)
	}
	for _, p := range UnknownRows(string(page), Variables()) {
		t.Error(p)
	}
}

// The README keeps to what a newcomer reads first.
func TestReadmeIsShort(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(Root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 200 {
		t.Errorf("README.md has %d lines, at most 200", len(lines))
	}
	head := strings.Join(lines[:min(60, len(lines))], "\n")
	for _, cmd := range []string{"make demo", "make test"} {
		if !strings.Contains(head, cmd) {
			t.Errorf("README.md does not show %q in its first 60 lines", cmd)
		}
	}
}

func TestSlug(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]string{
		"Alert: dates dead-lettered":                                         "alert-dates-dead-lettered",
		"What the emulator hides: the fidelity layer and `make cloud-check`": "what-the-emulator-hides-the-fidelity-layer-and-make-cloud-check",
		"Back-fills at scale: `make scale`":                                  "back-fills-at-scale-make-scale",
		"PLANNER_QUEUED and the pull path":                                   "planner_queued-and-the-pull-path",
	} {
		if got := Slug(h); got != want {
			t.Errorf("Slug(%q) = %q, want %q", h, got, want)
		}
	}
}

// Each check finds what it is for: a broken link, an anchor that is no
// heading, a make target that does not exist, a missing or wrong row.
func TestChecksFail(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# x\n[ok](docs/a.md#alert-one) [gone](docs/b.md) [bad](docs/a.md#alert-two) [self](#x) `[not](a link)`\n"+
		"```sh\n# [nor](this)\nmake demo\n```\nRun `make nothing`, then make sure.\n")
	write("docs/a.md", "# A\n## Alert: one\n```\n## Alert: two\n```\n")
	got := LinkProblems(root, []string{"README.md", "docs/a.md"})
	want := []string{
		`README.md:2: link "docs/b.md": docs/b.md does not exist`,
		`README.md:2: link "docs/a.md#alert-two": docs/a.md has no heading with the anchor #alert-two`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("link problems (-want +got):\n%s", diff)
	}
	b, _ := os.ReadFile(filepath.Join(root, "README.md"))
	got = MakeProblems(MakeTargets("demo:\n\tbash dev/demo.sh\nX := 1\n"), []Doc{Parse("README.md", string(b))})
	if diff := cmp.Diff([]string{"README.md:7: `make nothing` is no target of the Makefile"}, got); diff != "" {
		t.Errorf("make problems (-want +got):\n%s", diff)
	}
	page := "| variable | used by | meaning | default |\n|---|---|---|---|\n" +
		"| `A_SIZE` | both | size | `100` |\n| `A_WAIT` | loader | a wait, not `15m` | `1h` |\n| `A_NAME` | both | name | required |\n"
	got = VariableProblems(page, []config.Var{{Name: "A_SIZE", Default: "100"}, {Name: "A_WAIT", Default: "15m"}, {Name: "A_NAME"}, {Name: "SYNC_X"}},
		map[string]string{"A_SIZE": "both", "A_NAME": "planner"})
	want = []string{
		"the row for A_WAIT gives the default \"`1h`\", want `15m`",
		`the row for A_NAME says it is used by "both", want "planner"`,
		"no row for SYNC_X",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variable problems (-want +got):\n%s", diff)
	}
	got = UnknownRows(page+"| `OLD_NAME` | both | gone | `1` |\n| `x` | not a variable | | |\n", []config.Var{{Name: "A_SIZE"}, {Name: "A_WAIT"}, {Name: "A_NAME"}})
	if diff := cmp.Diff([]string{"a row for OLD_NAME, which neither binary reads"}, got); diff != "" {
		t.Errorf("unknown rows (-want +got):\n%s", diff)
	}
}

// A path, an identifier or a test the docs name and the code lacks is
// found; one the code has, or a package that is not ours, is not.
func TestCodeProblems(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for name, text := range map[string]string{
		"internal/foo/foo.go":      "package foo\n\nconst Bar = 1\n\ntype T struct{}\n\nfunc (T) Run() {}\n",
		"internal/foo/foo_test.go": "package foo\n\nfunc TestBar(t *testing.T) {}\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := Parse("docs/x.md", "`foo.Bar`, `foo.Run`, `job.Wait`, `internal/foo/foo.go`, `TestBar`\n"+
		"`foo.Baz`, `internal/foo/gone.go`, `TestGone`\n")
	got, err := CodeProblems(root, []Doc{doc})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"docs/x.md:2: internal/foo declares no Baz",
		"docs/x.md:2: internal/foo/gone.go does not exist",
		"docs/x.md:2: no test is named TestGone",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("code problems (-want +got):\n%s", diff)
	}
}

// A pointer from code into a page that does not exist, or to a heading
// the page lacks, is found.
func TestRefProblems(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for name, text := range map[string]string{
		"docs/a.md":     "# A\n\n## Alert: one\n",
		"x/x.go":        "package x\n\n// docs/a.md, \"Alert: one\"; docs/a.md\nconst m = \"see docs/a.md, \\\"Alert: two\\\"\"\n",
		"x/main.tf":     "# docs/b.md\n",
		"x/notes.txt":   "docs/c.md is not read\n",
		"docs/inner.go": "// docs/d.md: the docs themselves are not read\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := RefProblems(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`x/main.tf:1: docs/b.md does not exist`,
		`x/x.go:4: docs/a.md has no heading "Alert: two"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ref problems (-want +got):\n%s", diff)
	}
}

// Command lines are read from inline code and shell blocks only, and a
// command or flag the program lacks is named.
func TestCommandProblems(t *testing.T) {
	t.Parallel()
	p := Program{Name: "planner", Flags: []string{"dry-run", "version"},
		Commands: map[string][]string{"status": {"table", "verify"}, "check": nil}}
	doc := Parse("docs/cli.md", "Run `planner status --table T [--verify]` or `planner --dry-run`; `pgbq-prod-planner` is a job.\n"+
		"```sh\nplanner stats --table T   # a typo\nplanner status --tabel T; planner --dry-runn\n"+
		"gcloud run jobs execute pgbq-prod-planner --args=status\n```\n```\nplanner (Cloud Run job)\n```\n")
	want := []string{
		`docs/cli.md:3: planner has no command "stats"`,
		"docs/cli.md:4: planner status has no flag --tabel",
		"docs/cli.md:4: planner has no flag --dry-runn",
	}
	if diff := cmp.Diff(want, p.CommandProblems([]Doc{doc})); diff != "" {
		t.Errorf("command problems (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"planner --version is not shown", "planner check is not shown"}, p.Undocumented([]Doc{doc})); diff != "" {
		t.Errorf("undocumented (-want +got):\n%s", diff)
	}
}

// The README's own-table steps are one shell block right after the
// marker that the own-table trial (dev/trial) looks for, and hold the
// commands it runs.
func TestOwnTableSteps(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(Root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- own-table-steps: dev/trial runs this block literally -->\n```sh\n"
	_, block, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("README.md has no %q followed by a sh block", strings.Split(marker, "\n")[0])
	}
	block, _, _ = strings.Cut(block, "\n```")
	for _, want := range []string{"make stack-up", "source .devstack/env", "export PG_DSN=", "export SYNC_TABLE=",
		"export SYNC_ID_COLUMN=", "export SYNC_TIMESTAMP_COLUMN=", "export BQ_DATASET=", "export SYNC_FINISH_GRACE=0s",
		"planner migrate", "planner --dry-run", "\nplanner ", "loader --pull --exit-when-idle=", "planner status"} {
		if !strings.Contains("\n"+block, want) {
			t.Errorf("the own-table block lacks %q:\n%s", want, block)
		}
	}
}
