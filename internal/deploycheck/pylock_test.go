package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Issue 28, pinned builds: the test build installs the BigQuery emulator's
// Python packages (dev/bqemu.sh, run by `make test`), third-party code
// fetched at build time. pip installs them only from the committed lock,
// every package pinned to one version and to the sha256 of its wheels, so
// a package replaced upstream (or a dependency nobody pinned) fails the
// install instead of running.

var (
	// A pinned requirement: name, optional extras, == one exact version.
	lockPinRE  = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==([0-9][A-Za-z0-9.+!]*)$`)
	lockHashRE = regexp.MustCompile(`^--hash=sha256:[0-9a-f]{64}$`)
	// pipRE is pip itself as a command word (pip, pip3, pip3.11, …/bin/pip).
	pipRE = regexp.MustCompile(`(^|/)pip[0-9.]*$`)
)

// lockEntry is one logical line of a pip requirements file.
type lockEntry struct {
	line   int // where it starts
	fields []string
}

// readLock reads a requirements file into its logical lines: backslash
// continuations joined, comments and blank lines dropped.
func readLock(t *testing.T, path string) []lockEntry {
	t.Helper()
	var out []lockEntry
	var cur *lockEntry
	for i, raw := range strings.Split(string(check(os.ReadFile(path)).of(t)), "\n") {
		text := strings.TrimSpace(raw)
		if cur == nil && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if cur == nil {
			out = append(out, lockEntry{line: i + 1})
			cur = &out[len(out)-1]
		}
		cont := strings.HasSuffix(text, `\`)
		cur.fields = append(cur.fields, strings.Fields(strings.TrimSuffix(text, `\`))...)
		if !cont {
			cur = nil
		}
	}
	if cur != nil {
		t.Errorf("%s: line %d continues past the end of the file", path, cur.line)
	}
	return out
}

// canonName is a project name as pip compares them (PEP 503).
func canonName(s string) string {
	return strings.ToLower(regexp.MustCompile(`[-_.]+`).ReplaceAllString(s, "-"))
}

// Every requirement of the emulator's lock is pinned with ==, carries at
// least one sha256 and nothing else (no index, link or editable option);
// no project is listed twice, no hash is shared, and DuckDB and its
// extension packages are at the version dev/bqemu.sh installs the
// extensions for.
func TestEmulatorLockPinnedAndHashed(t *testing.T) {
	t.Parallel()
	path := repo(t, "dev", "bqemu-requirements.txt")
	entries := readLock(t, path)
	if len(entries) == 0 {
		t.Fatalf("%s: no requirements", path)
	}
	versions := map[string]string{}
	hashOwner := map[string]string{}
	for _, e := range entries {
		m := lockPinRE.FindStringSubmatch(e.fields[0])
		if m == nil {
			t.Errorf("%s:%d: %q is not pinned to one version (name==version)", path, e.line, e.fields[0])
			continue
		}
		name := canonName(m[1])
		if _, dup := versions[name]; dup {
			t.Errorf("%s:%d: %s is listed twice", path, e.line, m[1])
		}
		versions[name] = m[3]
		hashes := 0
		for _, f := range e.fields[1:] {
			if !lockHashRE.MatchString(f) {
				t.Errorf("%s:%d: %s: %q is not a --hash=sha256:<64 hex digits>", path, e.line, e.fields[0], f)
				continue
			}
			hashes++
			if other, seen := hashOwner[f]; seen {
				t.Errorf("%s:%d: %s repeats a hash of %s", path, e.line, e.fields[0], other)
			}
			hashOwner[f] = e.fields[0]
		}
		if hashes == 0 {
			t.Errorf("%s:%d: %s has no --hash: pip --require-hashes refuses the whole lock", path, e.line, e.fields[0])
		}
	}

	script := string(check(os.ReadFile(repo(t, "dev", "bqemu.sh"))).of(t))
	m := regexp.MustCompile(`(?m)^DUCKDB_VERSION="([^"]+)"$`).FindStringSubmatch(script)
	if m == nil {
		t.Fatal("dev/bqemu.sh: no DUCKDB_VERSION")
	}
	for _, p := range []string{"bqemulator", "duckdb", "duckdb-extension-spatial", "duckdb-extension-avro"} {
		switch v, ok := versions[p]; {
		case !ok:
			t.Errorf("%s: %s is not in the lock", path, p)
		case strings.HasPrefix(p, "duckdb") && v != m[1]:
			t.Errorf("%s: %s==%s, but dev/bqemu.sh places the extensions of DuckDB %s", path, p, v, m[1])
		}
	}
	if !strings.Contains(script, `REQS="$ROOT/dev/bqemu-requirements.txt"`) {
		t.Error("dev/bqemu.sh does not install from dev/bqemu-requirements.txt")
	}
}

// Every pip install in the scripts the builds run (dev/*.sh, and the
// build steps' own scripts) requires hashes and wheels, and names its
// packages only through -r files: a package named on the command line, or
// built from a source archive (running its build code), would escape the
// lock. The emulator's install is one of them.
func TestPipInstallsRequireHashes(t *testing.T) {
	t.Parallel()
	scripts := map[string]string{}
	for _, f := range check(filepath.Glob(repo(t, "dev", "*.sh"))).of(t) {
		scripts["dev/"+filepath.Base(f)] = string(check(os.ReadFile(f)).of(t))
	}
	for name, b := range map[string]cloudBuild{"cloudbuild.yaml": loadCloudBuild(t), "cloudbuild-test.yaml": loadTestBuild(t)} {
		for _, st := range b.Steps {
			if (st.Entrypoint == "bash" || st.Entrypoint == "sh") && len(st.Args) == 2 {
				// Cloud Build turns $$ into $ before the shell sees it.
				scripts[name+" step "+st.ID] = strings.ReplaceAll(st.Args[1], "$$", "$")
			}
		}
	}
	emulator := false
	for name, script := range scripts {
		cmds, _ := parseShell(t, name, script)
		for _, c := range cmds {
			at := -1
			for i := 0; i+1 < len(c.args); i++ {
				if pipRE.MatchString(c.args[i]) && c.args[i+1] == "install" {
					at = i + 2
				}
			}
			if at < 0 {
				continue
			}
			emulator = emulator || name == "dev/bqemu.sh"
			has := map[string]bool{}
			for i := at; i < len(c.args); i++ {
				a := c.args[i]
				has[a] = true
				switch {
				case a == "-r" || a == "--requirement":
					i++ // its file
				case !strings.HasPrefix(a, "-"):
					t.Errorf("%s: pip install names %q outside a hash-checked -r file: %q", name, a, c.args)
				}
			}
			for _, flag := range []string{"--require-hashes", "--only-binary=:all:"} {
				if !has[flag] {
					t.Errorf("%s: pip install without %s: %q", name, flag, c.args)
				}
			}
		}
	}
	if !emulator {
		t.Error("no pip install found in dev/bqemu.sh: this check would pass without looking at it")
	}
}
