package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pgbq/pgbq/internal/config"
)

// ReadmeDocuments checks that the README at path has a table row for every
// variable in vars, giving its default in that row's last cell.
func ReadmeDocuments(t *testing.T, path string, vars []config.Var) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ReadmeProblems(string(b), vars) {
		t.Error(p)
	}
}

// ReadmeProblems lists what the README's variable table lacks: a row
// whose first cell is the variable's name in backticks, and, for a
// variable with a default, that default in backticks in the row's last
// cell (the table's "default" column).
func ReadmeProblems(readme string, vars []config.Var) []string {
	rows := map[string][]string{}
	for _, line := range strings.Split(readme, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		name := cells[0]
		if len(name) > 2 && strings.HasPrefix(name, "`") && strings.HasSuffix(name, "`") {
			rows[strings.Trim(name, "`")] = cells
		}
	}
	var out []string
	for _, v := range vars {
		cells, ok := rows[v.Name]
		if !ok {
			out = append(out, fmt.Sprintf("README has no row for %s", v.Name))
			continue
		}
		if v.Default != "" && !strings.Contains(cells[len(cells)-1], "`"+v.Default+"`") {
			out = append(out, fmt.Sprintf("README's row for %s gives the default %q, want `%s`", v.Name, cells[len(cells)-1], v.Default))
		}
	}
	return out
}
