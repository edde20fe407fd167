package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestWaitForHelper is TestWaitFor's child: a wait that never ends.
func TestWaitForHelper(t *testing.T) {
	if os.Getenv("PGBQ_TESTENV_CHILD") == "" {
		t.Skip("SKIP: runs only as TestWaitFor's child process")
	}
	WaitFor(t, 50*time.Millisecond, "the moon to turn blue", func() bool { return false })
}

// WaitFor returns once the condition holds, and fails the test, naming
// what it waited for, when it never does.
func TestWaitFor(t *testing.T) {
	t.Parallel()
	n := 0
	WaitFor(t, time.Minute, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestWaitForHelper$")
	cmd.Env = append(os.Environ(), "PGBQ_TESTENV_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "waited 50ms for the moon to turn blue") {
		t.Fatalf("a wait that never ends: %v\n%s", err, out)
	}
}
