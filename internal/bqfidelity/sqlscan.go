package bqfidelity

import (
	"regexp"
	"strings"
)

// tableRef names a table; Decorator is the $YYYYMMDD part, if any.
type tableRef struct {
	Project, Dataset, Table, Decorator string
}

// String is BigQuery's "project:dataset.table" form, as its messages use.
func (t tableRef) String() string { return t.Project + ":" + t.Dataset + "." + t.Table }

func (t tableRef) key() string { return t.Project + "." + t.Dataset + "." + t.Table }

// refFromJSON reads a TableReference ({projectId, datasetId, tableId}),
// splitting a partition decorator off the table id.
func refFromJSON(v any, defProject string) (tableRef, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return tableRef{}, false
	}
	t := tableRef{}
	t.Project, _ = m["projectId"].(string)
	t.Dataset, _ = m["datasetId"].(string)
	t.Table, _ = m["tableId"].(string)
	if t.Project == "" {
		t.Project = defProject
	}
	t.Table, t.Decorator, _ = strings.Cut(t.Table, "$")
	return t, t.Table != ""
}

func (t tableRef) json(decorated bool) map[string]any {
	id := t.Table
	if decorated && t.Decorator != "" {
		id += "$" + t.Decorator
	}
	return map[string]any{"projectId": t.Project, "datasetId": t.Dataset, "tableId": id}
}

// sql renders the reference for SQL, backquoted.
func (t tableRef) sql() string { return "`" + t.Project + "." + t.Dataset + "." + t.Table + "`" }

// targetTableID is the table id a fault's Table filter matches against.
func targetTableID(kind string, config map[string]any) string {
	c, _ := config[kind].(map[string]any)
	if d, ok := c["destinationTable"].(map[string]any); ok {
		id, _ := d["tableId"].(string)
		return id
	}
	if kind == "extract" {
		if s, ok := c["sourceTable"].(map[string]any); ok {
			id, _ := s["tableId"].(string)
			return id
		}
	}
	if sql, ok := c["query"].(string); ok {
		// A DML statement's target.
		stmts, _ := scanSQL(sql, "", "")
		for _, st := range stmts {
			if st.dml() {
				return st.table.Table
			}
		}
	}
	return ""
}

// stmt is one statement of a query's SQL, as far as the limits care.
type stmt struct {
	verb  string // INSERT, UPDATE, DELETE, MERGE, TRUNCATE, ALTER, CREATE, DROP
	table tableRef
}

func (s stmt) mutating() bool {
	return s.verb == "UPDATE" || s.verb == "DELETE" || s.verb == "MERGE" || s.verb == "TRUNCATE"
}
func (s stmt) dml() bool { return s.verb == "INSERT" || s.mutating() }
func (s stmt) ddl() bool { return s.verb == "ALTER" || s.verb == "CREATE" || s.verb == "DROP" }

var (
	ident    = "(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_\\-]*)"
	refPat   = ident + "(?:\\s*\\.\\s*" + ident + ")*"
	stmtRe   = regexp.MustCompile(`(?i)\b(INSERT\s+(?:INTO\s+)?|UPDATE\s+|DELETE\s+(?:FROM\s+)?|MERGE\s+(?:INTO\s+)?|TRUNCATE\s+TABLE\s+|ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?|CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?|DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?)(` + refPat + `)`)
	txnRe    = regexp.MustCompile(`(?i)\bBEGIN\s+TRANSACTION\b|\bBEGIN\s*;`)
	keywords = map[string]bool{"SET": true, "WHEN": true, "WHERE": true, "VALUES": true, "ROW": true, "SELECT": true, "USING": true, "THEN": true, "AS": true}
)

// stripSQL blanks out comments and string literals so that the scanners
// never match inside them; backquoted names are kept.
func stripSQL(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '-' && i+1 < len(b) && b[i+1] == '-', b[i] == '#':
			for ; i < len(b) && b[i] != '\n'; i++ {
				b[i] = ' '
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			for ; i < len(b) && (b[i] != '*' || i+1 >= len(b) || b[i+1] != '/'); i++ {
				b[i] = ' '
			}
			if i+1 < len(b) {
				b[i], b[i+1] = ' ', ' '
				i++
			}
		case b[i] == '\'' || b[i] == '"':
			q := b[i]
			for i++; i < len(b) && b[i] != q; i++ {
				if b[i] == '\\' && i+1 < len(b) {
					b[i] = ' '
					i++
				}
				b[i] = ' '
			}
		case b[i] == '`':
			for i++; i < len(b) && b[i] != '`'; i++ {
			}
		}
	}
	return string(b)
}

// parseRef resolves a SQL table name against the defaults.
func parseRef(raw, defProject, defDataset string) tableRef {
	var parts []string
	for _, p := range strings.Split(strings.ReplaceAll(raw, "`", ""), ".") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	t := tableRef{Project: defProject, Dataset: defDataset}
	switch len(parts) {
	case 1:
		t.Table = parts[0]
	case 2:
		t.Dataset, t.Table = parts[0], parts[1]
	default:
		t.Project, t.Dataset, t.Table = parts[len(parts)-3], parts[len(parts)-2], parts[len(parts)-1]
	}
	t.Table, t.Decorator, _ = strings.Cut(t.Table, "$")
	return t
}

// scanSQL finds the statements that change tables, and whether the SQL
// opens a multi-statement transaction.
func scanSQL(sql, defProject, defDataset string) (stmts []stmt, txn bool) {
	s := stripSQL(sql)
	txn = txnRe.MatchString(s)
	for _, m := range stmtRe.FindAllStringSubmatch(s, -1) {
		verb := strings.ToUpper(strings.Fields(m[1])[0])
		raw := strings.TrimSpace(m[2])
		if keywords[strings.ToUpper(raw)] {
			continue // e.g. MERGE's "THEN UPDATE SET", "THEN DELETE WHEN"
		}
		if verb == "CREATE" && regexp.MustCompile(`(?i)TEMP`).MatchString(m[1]) {
			continue // temporary tables are not the caller's tables
		}
		stmts = append(stmts, stmt{verb: verb, table: parseRef(raw, defProject, defDataset)})
	}
	return stmts, txn
}

// alterRe matches "ALTER TABLE ref <actions>" as the whole SQL.
var alterRe = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+(IF\s+EXISTS\s+)?(` + refPat + `)\s+(.*?)\s*;?\s*$`)

// splitAlter turns "ALTER TABLE t ADD COLUMN a .., ADD COLUMN b .." into one
// statement per action (the emulator takes one per statement). It returns
// nil when the SQL is not a multi-action ALTER TABLE.
func splitAlter(sql string) []string {
	m := alterRe.FindStringSubmatch(sql)
	if m == nil || strings.Contains(stripSQL(sql), ";") && !strings.HasSuffix(strings.TrimSpace(sql), ";") {
		return nil
	}
	actions := splitTopLevel(m[3])
	if len(actions) < 2 {
		return nil
	}
	out := make([]string, 0, len(actions))
	for _, a := range actions {
		out = append(out, "ALTER TABLE "+m[1]+m[2]+" "+strings.TrimSpace(a))
	}
	return out
}

// splitTopLevel splits on commas outside brackets, quotes and backquotes.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			switch c {
			case '\\':
				i++
			case quote:
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '(' || c == '<' || c == '[':
			depth++
		case c == ')' || c == '>' || c == ']':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
