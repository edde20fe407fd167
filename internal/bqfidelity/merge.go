package bqfidelity

import (
	"context"
	"regexp"
	"strings"
)

// A MERGE with WHEN NOT MATCHED and WHEN NOT MATCHED BY SOURCE together
// reads the whole target unless its merge condition is a constant false
// predicate: "BigQuery usually performs a full outer join, which cannot be
// pruned. However, if the merge condition uses a constant false
// predicate, … BigQuery can prune" the target to the partitions the NOT
// MATCHED BY SOURCE filter names
// (https://cloud.google.com/bigquery/docs/using-dml-with-partitioned-tables#pruning_partitions_when_using_a_merge_statement).
// The layer counts such a MERGE whose condition is anything else
// (Stats.UnprunableMerges), so a test can tell a publish that would read
// the whole destination.
//
// DuckDB under the emulator plans ON FALSE as a nested loop of both sides
// (a 86,400-row day merged into a 1M-row table: 50 s, against 0.1 s for an
// equality join). BigQuery's SQL is not bent for it: the layer forwards
// the same MERGE with ON FALSE replaced by an equality with a column of
// NULLs added to the source — no row matches either way (NULL equals
// nothing), so the statement means the same, and DuckDB hash-joins it.

// noMatchColumn is the column of NULLs the translation adds to the source.
const noMatchColumn = "__bqfid_no_match"

var (
	mergeHead    = regexp.MustCompile(`(?is)\bMERGE\s+(?:INTO\s+)?(` + refPat + `)\s+(?:AS\s+)?(` + ident + `)\s+USING\s*`)
	mergeOnFalse = regexp.MustCompile(`(?is)^\s*(?:AS\s+)?(` + ident + `)\s+ON\s+FALSE\b`)
	mergeOn      = regexp.MustCompile(`(?is)^\s*(?:AS\s+)?(` + ident + `)\s+ON\s+(\S+)`)
	notMatched   = regexp.MustCompile(`(?is)\bWHEN\s+NOT\s+MATCHED\s+(?:BY\s+TARGET\s+)?(?:AND\b|THEN\b)`)
	bySource     = regexp.MustCompile(`(?is)\bWHEN\s+NOT\s+MATCHED\s+BY\s+SOURCE\b`)
)

// mergeShape is what the layer reads of a MERGE statement: where its
// source ends and what its condition is. Offsets index the SQL.
type mergeShape struct {
	target         tableRef
	targetAlias    string
	srcStart       int // the source: a parenthesised query or a table name
	srcEnd         int
	sourceAlias    string
	onFalseStart   int // "ON FALSE" (-1 when the condition is something else)
	onFalseEnd     int
	insertAndPrune bool // WHEN NOT MATCHED and WHEN NOT MATCHED BY SOURCE together
}

// readMerge finds the first MERGE statement of sql.
func readMerge(sql, defProject, defDataset string) (mergeShape, bool) {
	s := stripSQL(sql)
	m := mergeHead.FindStringSubmatchIndex(s)
	if m == nil {
		return mergeShape{}, false
	}
	sh := mergeShape{target: parseRef(s[m[2]:m[3]], defProject, defDataset), targetAlias: s[m[4]:m[5]], srcStart: m[1], onFalseStart: -1}
	if sh.srcStart < len(s) && s[sh.srcStart] == '(' {
		depth := 0
		for i := sh.srcStart; i < len(s) && sh.srcEnd == 0; i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				sh.srcEnd = i + 1
			}
		}
		if sh.srcEnd == 0 {
			return mergeShape{}, false
		}
	} else {
		loc := regexp.MustCompile(`^` + refPat).FindStringIndex(s[sh.srcStart:])
		if loc == nil {
			return mergeShape{}, false
		}
		sh.srcEnd = sh.srcStart + loc[1]
	}
	rest := s[sh.srcEnd:]
	if f := mergeOnFalse.FindStringSubmatchIndex(rest); f != nil {
		sh.sourceAlias = rest[f[2]:f[3]]
		sh.onFalseStart, sh.onFalseEnd = sh.srcEnd+strings.LastIndex(strings.ToUpper(rest[:f[1]]), "ON"), sh.srcEnd+f[1]
	} else if o := mergeOn.FindStringSubmatch(rest); o != nil {
		sh.sourceAlias = o[1]
	}
	sh.insertAndPrune = notMatched.MatchString(rest) && bySource.MatchString(rest)
	return sh, true
}

// unprunableMerge reports whether sql holds a MERGE that inserts and
// deletes by source without a constant false condition.
func unprunableMerge(sql string) bool {
	sh, ok := readMerge(sql, "", "")
	return ok && sh.insertAndPrune && sh.onFalseStart < 0
}

// translateOnFalse rewrites a MERGE … ON FALSE for DuckDB (see the comment
// at the top); col is a column of the target and typ its GoogleSQL type.
// It returns "" when sql has no such MERGE.
func translateOnFalse(sql string, sh mergeShape, col, typ string) string {
	if sh.onFalseStart < 0 || sh.sourceAlias == "" || strings.EqualFold(sh.sourceAlias, "ON") {
		return ""
	}
	src := sql[sh.srcStart:sh.srcEnd]
	if !strings.HasPrefix(src, "(") {
		src = "(SELECT * FROM " + src + ")"
	}
	var b strings.Builder
	b.WriteString(sql[:sh.srcStart])
	b.WriteString("(SELECT __bqfid_s.*, CAST(NULL AS " + typ + ") AS " + noMatchColumn + " FROM " + src + " AS __bqfid_s)")
	b.WriteString(sql[sh.srcEnd:sh.onFalseStart])
	b.WriteString("ON " + sh.targetAlias + ".`" + col + "` = " + sh.sourceAlias + "." + noMatchColumn)
	b.WriteString(sql[sh.onFalseEnd:])
	return b.String()
}

// joinColumn picks a column of fs that an equality can join on.
func joinColumn(fs []tableField) (name, typ string, ok bool) {
	for _, want := range []string{"INTEGER", "STRING", "DATE", "TIMESTAMP", "DATETIME"} {
		for _, f := range fs {
			if f.typ == want && !f.repeated {
				if want == "INTEGER" {
					return f.name, "INT64", true
				}
				return f.name, want, true
			}
		}
	}
	return "", "", false
}

// planMerge reads the MERGE of a query job: it counts an unprunable one
// and returns the SQL to forward to the emulator ("" to forward as sent).
func (p *Proxy) planMerge(ctx context.Context, project, defDataset, sql string) string {
	sh, ok := readMerge(sql, project, defDataset)
	if !ok {
		return ""
	}
	if sh.insertAndPrune && sh.onFalseStart < 0 {
		p.stats.add(func(s *Stats) { s.UnprunableMerges++ })
		if p.opt.Logf != nil {
			p.opt.Logf("bqfidelity: MERGE into %s inserts and deletes by source without ON FALSE: BigQuery reads the whole table", sh.target)
		}
		return ""
	}
	meta := p.tableMeta(ctx, sh.target)
	if meta == nil {
		return ""
	}
	col, typ, ok := joinColumn(p.destFields(ctx, project, sh.target, meta))
	if !ok {
		return ""
	}
	return translateOnFalse(sql, sh, col, typ)
}
