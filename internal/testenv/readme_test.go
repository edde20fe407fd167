package testenv

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/config"
)

func TestReadmeProblems(t *testing.T) {
	t.Parallel()
	readme := "intro mentions `15m` and `SYNC_X`\n\n" +
		"| variable | used by | meaning | default |\n|---|---|---|---|\n" +
		"| `A_SIZE` | both | size | `100` |\n" +
		"| `A_WAIT` | loader | a wait, not `15m` | `1h` |\n" +
		"| `A_NAME` | both | name | required |\n"
	vars := []config.Var{
		{Name: "A_SIZE", Default: "100"},
		{Name: "A_WAIT", Default: "15m"}, // 15m appears, but not as this row's default
		{Name: "A_NAME"},
		{Name: "SYNC_X"}, // named in prose, no row
	}
	want := []string{
		"README's row for A_WAIT gives the default \"`1h`\", want `15m`",
		"README has no row for SYNC_X",
	}
	if diff := cmp.Diff(want, ReadmeProblems(readme, vars)); diff != "" {
		t.Fatalf("problems (-want +got):\n%s", diff)
	}
}
