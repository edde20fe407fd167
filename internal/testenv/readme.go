package testenv

import (
	"os"
	"strings"
	"testing"

	"github.com/pgbq/pgbq/internal/config"
)

// ReadmeDocuments checks that the README at path has a table row for every
// variable in vars, giving its default where it has one.
func ReadmeDocuments(t *testing.T, path string, vars []config.Var) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, v := range vars {
		if !strings.Contains(readme, "| `"+v.Name+"` |") {
			t.Errorf("README has no row for %s", v.Name)
		}
		if v.Default != "" && !strings.Contains(readme, "`"+v.Default+"`") {
			t.Errorf("README does not give %s's default %q", v.Name, v.Default)
		}
	}
}
