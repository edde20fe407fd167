// Package trial runs the README's own-table steps as a new user would: the
// ```sh block right after the line Marker in README.md, taken literally,
// against a PostgreSQL table with a given number of dates of history, with
// the user's values (PG_DSN, SYNC_TABLE, …) put where the README says to
// put them. It reports whether the run ended by itself, which dates
// sync_control records finished, and how often the loader worked each date
// (from the loader's own log lines). `make trial` runs it at 400 dates;
// `make test` at 40 (TestOwnTableTrial).
package trial

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Marker is the line in README.md right before the own-table block.
const Marker = "<!-- own-table-steps: dev/trial runs this block literally -->"

// Block returns the ```sh block that follows Marker in readme.
func Block(readme []byte) (string, error) {
	i := bytes.Index(readme, []byte(Marker))
	if i < 0 {
		return "", fmt.Errorf("README has no line %q", Marker)
	}
	rest := strings.TrimLeft(string(readme[i+len(Marker):]), " \t\r\n")
	if !strings.HasPrefix(rest, "```sh\n") && !strings.HasPrefix(rest, "```bash\n") {
		return "", errors.New("the line after the own-table marker does not open a ```sh block")
	}
	rest = rest[strings.Index(rest, "\n")+1:]
	end := strings.Index(rest, "\n```")
	if end < 0 {
		return "", errors.New("the own-table block is not closed")
	}
	return rest[:end+1], nil
}

var exportRE = regexp.MustCompile(`^(\s*export\s+)([A-Z_][A-Z0-9_]*)=`)

// Substitute puts the user's values into the block's exports of those
// variables (the README tells the user to replace them); every other line
// stays as written.
func Substitute(block string, values map[string]string) string {
	lines := strings.Split(block, "\n")
	for i, l := range lines {
		m := exportRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if v, ok := values[m[2]]; ok {
			lines[i] = m[1] + m[2] + "=" + shellQuote(v)
		}
	}
	return strings.Join(lines, "\n")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
