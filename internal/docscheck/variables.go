package docscheck

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/pgbq/pgbq/internal/config"
)

// VariableProblems lists what a page's variable table lacks: a row whose
// first cell is the variable's name in backticks and, for a variable with
// a default, that default in backticks in the row's last cell (the
// "default" column). usedBy, when not nil, gives the "used by" cell
// (the second) each variable's row must hold.
func VariableProblems(page string, vars []config.Var, usedBy map[string]string) []string {
	rows := tableRows(page)
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

// UnknownRows lists the rows of a page's variable table that name a
// variable none of vars is: a row left behind by a variable removed or
// renamed in the code.
func UnknownRows(page string, vars []config.Var) []string {
	known := map[string]bool{}
	for _, v := range vars {
		known[v.Name] = true
	}
	var out []string
	for name := range tableRows(page) {
		if envNameRE.MatchString(name) && !known[name] {
			out = append(out, fmt.Sprintf("a row for %s, which neither binary reads", name))
		}
	}
	sort.Strings(out)
	return out
}

// envNameRE is an environment variable's name.
var envNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// tableRows are a page's table rows whose first cell is one name in
// backticks, by that name, split into trimmed cells.
func tableRows(page string) map[string][]string {
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
	return rows
}
