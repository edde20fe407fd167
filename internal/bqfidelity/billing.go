package bqfidelity

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bytes processed and billed by a query job, as on-demand pricing counts
// them, so that tests and benchmarks see what a statement would cost.
//
// https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax#on-demand_query_size_calculation
// — "q' = The sum of bytes processed by the DML statement itself, including
// any columns referenced in all partitions scanned by the DML statement";
// "t' = The sum of bytes for all columns in the updated or scanned
// partitions for the table being updated"; INSERT is q', UPDATE and DELETE
// q' + t', MERGE q' with only INSERT clauses and q' + t' with an UPDATE or
// DELETE clause. Modelled: the table a mutating statement changes is billed
// all its columns in every partition it scans or changes (t'), every other
// table the bytes of its referenced columns in the partitions it scans.
//
// https://cloud.google.com/bigquery/docs/querying-partitioned-tables — a
// filter on the partitioning column against constants prunes partitions;
// anything else scans them all. Modelled strictly: only a range "col >=
// <literal> … col < <literal>" (or col = DATE '…') prunes, and only for the
// table it names (qualified by its alias when the SQL names several tables).
//
// https://cloud.google.com/bigquery/docs/using-dml-with-partitioned-tables#pruning_partitions_when_using_a_merge_statement
// — with WHEN NOT MATCHED and WHEN NOT MATCHED BY SOURCE together "BigQuery
// usually performs a full outer join, which cannot be pruned. However, if
// the merge condition uses a constant false predicate, BigQuery can use
// the filter condition for partition pruning." Modelled: a MERGE target is
// pruned by its WHEN NOT MATCHED BY SOURCE filter only under ON FALSE; with
// both clauses and any other condition it is read whole. A join on a key
// that is NULL in every source row is not a constant false predicate.
//
// https://cloud.google.com/bigquery/docs/storage_overview#storage_billing
// (data size calculation) — INT64, FLOAT64, DATE, DATETIME, TIME and
// TIMESTAMP 8 bytes, NUMERIC 16, BIGNUMERIC 32, BOOL 1, INTERVAL 16, STRING
// and BYTES 2 + their length in bytes, JSON the length of its text, an
// ARRAY the sum of its elements, NULL 0.
//
// https://cloud.google.com/bigquery/pricing#on_demand_pricing — "the minimum
// data processed per table referenced by the query is 10 MB", rounded up to
// the next MB: totalBytesBilled.
//
// Stricter than the pages: a column counts as referenced when its name
// appears anywhere in the SQL as a word (or the SQL selects *), and a filter
// is read without regard to OR.

// meterResult is what a query job processed.
type meterResult struct {
	processed, billed int64
	stmtType          string
}

const mib = 1 << 20

// tableScan is one table the SQL names and what of it is read.
type tableScan struct {
	ref     tableRef
	alias   string
	meta    map[string]any
	changed bool // its partitions are billed whole: a mutating statement's target
	merge   bool // the target of a MERGE
}

var (
	fromRe  = regexp.MustCompile(`(?i)\b(FROM|JOIN|USING|MERGE(?:\s+INTO)?|INSERT(?:\s+INTO)?|INTO|UPDATE|TABLE)\s+(` + refPat + `)(\s+(?:AS\s+)?(` + ident + `))?(\s*\()?`)
	wordRe  = regexp.MustCompile("`[^`]+`|[A-Za-z_][A-Za-z0-9_]*")
	starRe  = regexp.MustCompile(`(?i)(SELECT|,|\.)\s*\*`)
	onFalse = regexp.MustCompile(`(?i)\bON\s+\(?\s*(FALSE|1\s*=\s*0|0\s*=\s*1)\s*\)?\s+WHEN\b`)
	bySrcRe = regexp.MustCompile(`(?is)WHEN\s+NOT\s+MATCHED\s+BY\s+SOURCE\b(.*?)\bTHEN\b`)
	byTgtRe = regexp.MustCompile(`(?i)WHEN\s+NOT\s+MATCHED\s+(BY\s+TARGET\s+)?(AND|THEN)\b`)
	mutRe   = regexp.MustCompile(`(?i)\bTHEN\s+(UPDATE|DELETE)\b`)
	boundRe = regexp.MustCompile(`(?i)(?:(` + ident + `)\s*\.\s*)?(` + ident + `)\s*(>=|<=|>|<|=)\s*(?:TIMESTAMP|DATETIME|DATE)\s*\(?\s*'([^']+)'`)
	notRef  = map[string]bool{"UNNEST": true, "SELECT": true, "WITH": true}
)

// scans lists the tables sql names, each once, with its alias.
func scans(sql, project, defDataset string) []tableScan {
	s := stripSQL(sql)
	var out []tableScan
	seen := map[string]int{}
	for _, m := range fromRe.FindAllStringSubmatch(s, -1) {
		raw := strings.TrimSpace(m[2])
		if notRef[strings.ToUpper(raw)] || keywords[strings.ToUpper(raw)] {
			continue
		}
		switch strings.ToUpper(m[1]) {
		case "FROM", "JOIN", "USING":
			if m[5] != "" && m[3] == "" {
				continue // a function call: UNNEST(…), a table function
			}
		}
		ref := parseRef(raw, project, defDataset)
		alias := strings.Trim(m[4], "`")
		if keywords[strings.ToUpper(alias)] || isClause(alias) {
			alias = ""
		}
		if i, ok := seen[ref.key()]; ok {
			if out[i].alias == "" {
				out[i].alias = alias
			}
			continue
		}
		seen[ref.key()] = len(out)
		out = append(out, tableScan{ref: ref, alias: alias})
	}
	return out
}

func isClause(w string) bool {
	switch strings.ToUpper(w) {
	case "WHERE", "ON", "GROUP", "ORDER", "LIMIT", "QUALIFY", "HAVING", "LEFT", "RIGHT", "INNER", "FULL", "CROSS",
		"JOIN", "UNION", "WINDOW", "FOR", "TABLESAMPLE", "AND", "OR", "NOT", "IN", "IS":
		return true
	}
	return false
}

// bound is one comparison of a column with a date or time literal.
type bound struct {
	alias, col, op string
	day            time.Time
	midnight       bool // the literal is a day's start
}

func bounds(sql string) []bound {
	var out []bound
	for _, m := range boundRe.FindAllStringSubmatch(sql, -1) {
		d, midnight, ok := parseLiteral(m[4])
		if !ok {
			continue
		}
		out = append(out, bound{alias: strings.Trim(m[1], "`"), col: strings.Trim(m[2], "`"), op: m[3], day: d, midnight: midnight})
	}
	return out
}

// parseLiteral reads a date or UTC time literal: its day, and whether it
// is the day's start. A literal in another zone is not read (no pruning).
func parseLiteral(lit string) (day time.Time, midnight, ok bool) {
	lit = strings.TrimSpace(lit)
	if len(lit) < 10 {
		return day, false, false
	}
	day, err := time.Parse(time.DateOnly, lit[:10])
	if err != nil {
		return day, false, false
	}
	rest := strings.TrimLeft(lit[10:], "Tt ")
	for _, z := range []string{" UTC", "UTC", "+00:00", "+00", "-00:00", "-00", "Z", "z"} {
		rest = strings.TrimSuffix(rest, z)
	}
	if strings.ContainsAny(rest, "+-") || strings.IndexFunc(rest, func(r rune) bool { return !strings.ContainsRune("0123456789:.", r) }) >= 0 {
		return day, false, false
	}
	return day, strings.Trim(rest, "0:.") == "", true
}

// prunedDays are the partitions the bounds on column col (of alias, or
// unqualified when bare is allowed) restrict a scan to; nil: every one.
func prunedDays(bs []bound, col, alias string, bare bool) []string {
	var days []string
	var lower *bound
	named := false
	for i := range bs {
		b := &bs[i]
		if !strings.EqualFold(b.col, col) {
			continue
		}
		if b.alias == "" && !bare || b.alias != "" && !strings.EqualFold(b.alias, alias) {
			continue
		}
		named = true
		switch b.op {
		case "=":
			if !b.midnight {
				return nil
			}
			days = append(days, b.day.Format(time.DateOnly))
		case ">=", ">":
			if lower != nil {
				return nil
			}
			lower = b
		case "<", "<=":
			if lower == nil {
				return nil
			}
			last := b.day
			if b.op == "<" && b.midnight {
				last = last.AddDate(0, 0, -1)
			}
			for d := lower.day; !d.After(last); d = d.AddDate(0, 0, 1) {
				days = append(days, d.Format(time.DateOnly))
				if len(days) > 10000 {
					return nil
				}
			}
			lower = nil
		}
	}
	if !named || lower != nil {
		return nil
	}
	slices.Sort(days)
	days = slices.Compact(days)
	if days == nil {
		days = []string{} // ranges that hold no day: nothing is read
	}
	return days
}

// meter computes what query job j will process, before it runs (the
// sizes are the tables' "at the time the query starts"). A nil result with
// no error means the job is not a query.
//
// sql is the statement as the client sent it (clientSQL, read before the
// job is planned): a rule that rewrites SQL for the emulator must not
// change what is billed.
func (p *Proxy) meter(ctx context.Context, j *job, pl *plan, sql string) (*meterResult, error) {
	if j.kind != "query" {
		return nil, nil
	}
	c, _ := j.config["query"].(map[string]any)
	defDataset := ""
	if dd, ok := c["defaultDataset"].(map[string]any); ok {
		defDataset, _ = dd["datasetId"].(string)
	}
	res := &meterResult{stmtType: "SELECT"}
	if len(pl.stmts) > 0 {
		res.stmtType = pl.stmts[0].verb
	}
	words := map[string]bool{}
	for _, w := range wordRe.FindAllString(stripSQL(sql), -1) {
		words[strings.ToLower(strings.Trim(w, "`"))] = true
	}
	star := starRe.MatchString(stripSQL(sql))
	ts := scans(sql, j.project, defDataset)
	targets := map[string]string{}
	for _, st := range pl.stmts {
		if st.dml() && (targets[st.table.key()] == "" || targets[st.table.key()] == "INSERT") {
			targets[st.table.key()] = st.verb // a statement that changes rows decides
		}
	}
	merge := strings.EqualFold(res.stmtType, "MERGE")
	mutating := !merge || mutRe.MatchString(stripSQL(sql))
	for i := range ts {
		t := &ts[i]
		t.meta = p.tableMeta(ctx, t.ref)
		if t.meta == nil {
			continue // a CTE's name, or a table the job creates
		}
		verb, target := targets[t.ref.key()]
		if target && verb == "INSERT" {
			res.billed += 10 * mib // referenced, though an INSERT does not read it
			continue
		}
		t.merge = target && verb == "MERGE"
		t.changed = target && verb != "INSERT" && (verb != "MERGE" || mutating)
		field := partitionField(t.meta)
		var days []string
		pruned := false
		if field != "" {
			filter := sql
			if t.merge {
				filter = mergeFilter(sql)
			}
			if filter != "" {
				days = prunedDays(bounds(filter), field, t.alias, len(ts) == 1 || t.alias == "")
				pruned = days != nil
			}
			if t.merge && !onFalse.MatchString(stripSQL(sql)) && byTgtRe.MatchString(stripSQL(sql)) && bySrcRe.MatchString(stripSQL(sql)) {
				pruned, days = false, nil // a full outer join: never pruned
			}
		}
		var cols []fieldInfo
		for _, f := range schemaFields(t.meta) {
			if t.changed || star || words[strings.ToLower(f.name)] {
				cols = append(cols, f)
			}
		}
		n, err := p.tableBytes(ctx, j.project, t.ref, t.meta, cols, field, days, pruned)
		if err != nil {
			return nil, fmt.Errorf("size of %s: %w", t.ref, err)
		}
		res.processed += n
		res.billed += max(n, 10*mib)
	}
	res.billed = (res.billed + mib - 1) / mib * mib
	return res, nil
}

// clientSQL is a query job's SQL as the client sent it.
func clientSQL(j *job) string {
	c, _ := j.config["query"].(map[string]any)
	sql, _ := c["query"].(string)
	return sql
}

// mergeFilter is the text a MERGE target's partitions may be pruned by:
// under ON FALSE, the WHEN NOT MATCHED BY SOURCE conditions; otherwise the
// ON condition (pruning needs the target's own column bounded there).
func mergeFilter(sql string) string {
	if onFalse.MatchString(stripSQL(sql)) {
		var parts []string
		for _, m := range bySrcRe.FindAllStringSubmatch(sql, -1) {
			parts = append(parts, m[1])
		}
		return strings.Join(parts, " ")
	}
	up := strings.ToUpper(sql)
	on := strings.Index(up, ") AS S ON ")
	if on < 0 {
		on = strings.LastIndex(up, " ON ")
	}
	when := strings.Index(up[max(on, 0):], " WHEN ")
	if on < 0 || when < 0 {
		return ""
	}
	return sql[on : on+when]
}

// partitionField is a time-partitioned table's column ("" if none).
func partitionField(meta map[string]any) string {
	tp, ok := meta["timePartitioning"].(map[string]any)
	if !ok {
		return ""
	}
	field, _ := tp["field"].(string)
	for _, f := range schemaFields(meta) {
		if strings.EqualFold(f.name, field) {
			return f.name
		}
	}
	return ""
}

// sizeExpr is the SQL summing one column's bytes by the data size table.
func sizeExpr(f fieldInfo, repeated bool) string {
	c := "`" + f.name + "`"
	fixed := map[string]int{"INTEGER": 8, "INT64": 8, "FLOAT": 8, "FLOAT64": 8, "DATE": 8, "DATETIME": 8, "TIME": 8,
		"TIMESTAMP": 8, "NUMERIC": 16, "BIGNUMERIC": 32, "BOOLEAN": 1, "BOOL": 1, "INTERVAL": 16}
	if n, ok := fixed[f.typ]; ok {
		if repeated {
			return fmt.Sprintf("SUM(%d * ARRAY_LENGTH(%s))", n, c)
		}
		return fmt.Sprintf("%d * COUNT(%s)", n, c)
	}
	switch f.typ {
	case "STRING", "BYTES":
		if repeated {
			return fmt.Sprintf("SUM(2 * ARRAY_LENGTH(%s) + BYTE_LENGTH(ARRAY_TO_STRING(%s, '')))", c, c)
		}
		return fmt.Sprintf("SUM(2 + BYTE_LENGTH(%s))", c)
	}
	// JSON and anything else: the length of its JSON text (never less than
	// the data size page's figure for JSON).
	return fmt.Sprintf("SUM(BYTE_LENGTH(TO_JSON_STRING(%s)))", c)
}

// tableBytes sums the bytes of cols of t, over the given days when pruned
// (days of its partitioning column field), else over the whole table.
func (p *Proxy) tableBytes(ctx context.Context, project string, t tableRef, meta map[string]any, cols []fieldInfo, field string, days []string, pruned bool) (int64, error) {
	if len(cols) == 0 || pruned && len(days) == 0 {
		return 0, nil
	}
	repeated := map[string]bool{}
	s, _ := meta["schema"].(map[string]any)
	fs, _ := s["fields"].([]any)
	for _, f := range fs {
		m, _ := f.(map[string]any)
		n, _ := m["name"].(string)
		repeated[strings.ToLower(n)] = m["mode"] == "REPEATED"
	}
	exprs := make([]string, len(cols))
	for i, f := range cols {
		exprs[i] = "COALESCE(" + sizeExpr(f, repeated[strings.ToLower(f.name)]) + ", 0)"
	}
	sql := "SELECT " + strings.Join(exprs, " + ") + " FROM " + t.sql()
	if pruned {
		quoted := make([]string, len(days))
		for i, d := range days {
			quoted[i] = "DATE '" + d + "'"
		}
		sql += " WHERE DATE(`" + field + "`) IN (" + strings.Join(quoted, ", ") + ")"
	}
	n, aerr := p.emuCount(ctx, project, sql)
	if aerr != nil {
		return 0, aerr
	}
	return n, nil
}

// charge records a successful job's bytes; meterStats puts them on the job
// resource (statistics.totalBytesProcessed, statistics.query.*).
func (p *Proxy) charge(j *job, m *meterResult) {
	if m == nil {
		return
	}
	p.jobs.mu.Lock()
	j.meter = m
	p.jobs.mu.Unlock()
	p.stats.add(func(s *Stats) {
		s.BytesProcessed[m.stmtType] += m.processed
		s.BytesBilled += m.billed
	})
}

// meterStats writes the job's bytes into stats (called with jobs.mu held).
func meterStats(j *job, stats map[string]any) {
	if j.meter == nil {
		return
	}
	q, _ := stats["query"].(map[string]any)
	qq := map[string]any{}
	for k, v := range q {
		qq[k] = v
	}
	processed := strconv.FormatInt(j.meter.processed, 10)
	qq["totalBytesProcessed"] = processed
	qq["totalBytesBilled"] = strconv.FormatInt(j.meter.billed, 10)
	qq["billingTier"] = 1
	if _, ok := qq["statementType"]; !ok {
		qq["statementType"] = j.meter.stmtType
	}
	stats["query"] = qq
	stats["totalBytesProcessed"] = processed
}
