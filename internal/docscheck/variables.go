package docscheck

import (
	"fmt"
	"strings"

	"github.com/pgbq/pgbq/internal/config"
)

// VariableProblems lists what a page's variable table lacks: a row whose
// first cell is the variable's name in backticks and, for a variable with
// a default, that default in backticks in the row's last cell (the
// "default" column). usedBy, when not nil, gives the "used by" cell
// (the second) each variable's row must hold.
func VariableProblems(page string, vars []config.Var, usedBy map[string]string) []string {
	rows := map[string][]string{}
	for _, line := range strings.Split(page, "\n") {
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
			out = append(out, fmt.Sprintf("no row for %s", v.Name))
			continue
		}
		if v.Default != "" && !strings.Contains(cells[len(cells)-1], "`"+v.Default+"`") {
			out = append(out, fmt.Sprintf("the row for %s gives the default %q, want `%s`", v.Name, cells[len(cells)-1], v.Default))
		}
		if want, ok := usedBy[v.Name]; ok && (len(cells) < 2 || cells[1] != want) {
			out = append(out, fmt.Sprintf("the row for %s says it is used by %q, want %q", v.Name, cells[1], want))
		}
	}
	return out
}
