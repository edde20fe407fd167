package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNeedsHelper is run by TestMissingStack in a child process with the
// stack's variables cleared; on its own (the stack present or not) it
// only asks for PostgreSQL.
func TestNeedsHelper(t *testing.T) {
	if os.Getenv("PGBQ_TESTENV_CHILD") == "" {
		t.Skip("SKIP: runs only as TestMissingStack's child process")
	}
	PG(t)
}

// Without the stack, a test that needs PostgreSQL skips naming the
// variable; with CI set the same test fails naming it.
func TestMissingStack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ci string
		fail     bool
		want     string
	}{
		{"local", "", false, "--- SKIP: TestNeedsHelper"},
		{"ci", "true", true, "--- FAIL: TestNeedsHelper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestNeedsHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "PGBQ_TESTENV_CHILD=1", EnvPG+"=", EnvCI+"="+tc.ci)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.fail {
				t.Fatalf("child exited with %v, want failure %v:\n%s", err, tc.fail, out)
			}
			if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), EnvPG+" is not set, so this test has no PostgreSQL server") {
				t.Fatalf("child output lacks %q and the missing variable:\n%s", tc.want, out)
			}
		})
	}
}
