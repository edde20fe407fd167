package bqfidelity

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Partition decorators (table$YYYYMMDD) on a copy job's source and
// destination, a load job's destination and a query job's destinationTable.
// https://cloud.google.com/bigquery/docs/managing-partitioned-table-data —
// writing to a decorator with WRITE_TRUNCATE replaces exactly that
// partition, atomically; WRITE_APPEND appends to it; every row must belong
// to the decorator's partition, else the job fails; a decorator on a table
// that is not partitioned fails.
// https://cloud.google.com/bigquery/docs/load-data-partitioned-tables —
// loads and query results written "into a specific partition … without
// affecting other partitions".
// https://cloud.google.com/bigquery/docs/creating-partitioned-tables (DAY
// partitioning of a TIMESTAMP, DATETIME or DATE column).
//
// The emulator rejects decorators and keeps partitioning as metadata only,
// so a decorated job is translated: its rows go to a scratch table on the
// emulator, every row is checked to be inside the day, then one emulator
// transaction replaces or extends the day, and the scratch table is dropped.
// The emulator runs one request at a time, so readers never see half a day.

type decorPlan struct {
	kind      string
	dest      tableRef
	destMeta  map[string]any
	field     string // destination's partitioning column (when decorated)
	ftype     string
	day       time.Time
	write     string // WRITE_TRUNCATE, WRITE_APPEND, WRITE_EMPTY
	src       tableRef
	srcFilter string // copy: the source's day, as a SQL condition
	allowAdd  bool   // schemaUpdateOptions has ALLOW_FIELD_ADDITION
}

func invalid(format string, a ...any) *apiError {
	return &apiError{Code: 400, Reason: "invalid", Message: fmt.Sprintf(format, a...)}
}

func notFound(t tableRef) *apiError {
	return &apiError{Code: 404, Reason: "notFound", Message: "Not found: Table " + t.String()}
}

// dayOf checks a decorated table and returns its partitioning column, the
// column's type and the day.
func dayOf(t tableRef, meta map[string]any) (field, ftype string, d time.Time, err *apiError) {
	if meta == nil {
		return "", "", d, notFound(t)
	}
	tp, ok := meta["timePartitioning"].(map[string]any)
	if !ok {
		return "", "", d, invalid("Cannot read partition information from a table that is not partitioned: %s$%s", t, t.Decorator)
	}
	if typ, _ := tp["type"].(string); typ != "" && typ != "DAY" {
		return "", "", d, invalid("fidelity: only DAY partition decorators are modelled, %s is %s-partitioned", t, typ)
	}
	d, perr := time.Parse("20060102", t.Decorator)
	if perr != nil || len(t.Decorator) != 8 {
		return "", "", d, invalid("Invalid partition decorator: %s$%s", t, t.Decorator)
	}
	// Day partitions cover 1960-01-01..2159-12-31; rows of other days are
	// kept in __UNPARTITIONED__, which has no decorator of a day
	// (https://cloud.google.com/bigquery/docs/partitioned-tables#date_timestamp_partitioned_tables).
	if d.Before(firstPartitionDay) || d.After(lastPartitionDay) {
		return "", "", d, invalid("Invalid partition decorator: %s$%s: day partitions cover 1960-01-01 through 2159-12-31", t, t.Decorator)
	}
	field, _ = tp["field"].(string)
	if field == "" {
		return "", "", d, invalid("fidelity: ingestion-time partitioned tables are not modelled (%s)", t)
	}
	for _, f := range schemaFields(meta) {
		if strings.EqualFold(f.name, field) {
			return f.name, f.typ, d, nil
		}
	}
	return "", "", d, invalid("partitioning column %s is not in the schema of %s", field, t)
}

var (
	firstPartitionDay = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	lastPartitionDay  = time.Date(2159, 12, 31, 0, 0, 0, 0, time.UTC)
)

type fieldInfo struct{ name, typ string }

func schemaFields(meta map[string]any) []fieldInfo {
	s, _ := meta["schema"].(map[string]any)
	fs, _ := s["fields"].([]any)
	var out []fieldInfo
	for _, f := range fs {
		m, _ := f.(map[string]any)
		n, _ := m["name"].(string)
		t, _ := m["type"].(string)
		out = append(out, fieldInfo{n, strings.ToUpper(t)})
	}
	return out
}

// dayFilter is the SQL condition "column is inside day d".
func dayFilter(field, ftype string, d time.Time) string {
	col := "`" + field + "`"
	a, b := d.Format("2006-01-02"), d.AddDate(0, 0, 1).Format("2006-01-02")
	switch ftype {
	case "DATE":
		return fmt.Sprintf("%s = CAST('%s' AS DATE)", col, a)
	case "DATETIME":
		return fmt.Sprintf("%s >= CAST('%sT00:00:00' AS DATETIME) AND %s < CAST('%sT00:00:00' AS DATETIME)", col, a, col, b)
	default:
		return fmt.Sprintf("%s >= TIMESTAMP('%s') AND %s < TIMESTAMP('%s')", col, a, col, b)
	}
}

// planDecorators returns nil when the job names no decorator.
func (p *Proxy) planDecorators(ctx context.Context, j *job) (*decorPlan, *apiError) {
	c, _ := j.config[j.kind].(map[string]any)
	dest, hasDest := refFromJSON(c["destinationTable"], j.project)
	var srcs []tableRef
	if j.kind == "copy" {
		if s, ok := refFromJSON(c["sourceTable"], j.project); ok {
			srcs = append(srcs, s)
		}
		if list, ok := c["sourceTables"].([]any); ok {
			for _, v := range list {
				if s, ok := refFromJSON(v, j.project); ok {
					srcs = append(srcs, s)
				}
			}
		}
	}
	decorated := hasDest && dest.Decorator != ""
	for _, s := range srcs {
		decorated = decorated || s.Decorator != ""
	}
	// The emulator ignores a query's destinationTable, so every query with
	// one takes this path, decorated or not.
	if j.kind == "extract" || !decorated && !(j.kind == "query" && hasDest) {
		return nil, nil
	}
	d := &decorPlan{kind: j.kind, dest: dest, write: "WRITE_APPEND"}
	if j.kind != "load" {
		d.write = "WRITE_EMPTY"
	}
	if w, _ := c["writeDisposition"].(string); w != "" {
		d.write = w
	}
	if opts, ok := c["schemaUpdateOptions"].([]any); ok {
		d.allowAdd = slices.Contains(opts, any("ALLOW_FIELD_ADDITION"))
	}
	d.destMeta = p.tableMeta(ctx, dest)
	if dest.Decorator != "" {
		var err *apiError
		if d.field, d.ftype, d.day, err = dayOf(dest, d.destMeta); err != nil {
			return nil, err
		}
	} else if d.destMeta == nil && c["createDisposition"] == "CREATE_NEVER" {
		return nil, notFound(dest)
	}
	if j.kind == "copy" {
		if len(srcs) != 1 {
			return nil, invalid("fidelity: a decorated copy job takes one source table")
		}
		d.src = srcs[0]
		srcMeta := p.tableMeta(ctx, d.src)
		if srcMeta == nil {
			return nil, notFound(d.src)
		}
		d.srcFilter = "TRUE"
		if d.src.Decorator != "" {
			f, ft, day, err := dayOf(d.src, srcMeta)
			if err != nil {
				return nil, err
			}
			d.srcFilter = dayFilter(f, ft, day)
		}
	}
	return d, nil
}

// runDecorated does a decorated job's work (see the comment at the top).
func (p *Proxy) runDecorated(ctx context.Context, j *job, d *decorPlan) *apiError {
	if d.destMeta == nil && d.dest.Decorator != "" {
		return notFound(d.dest)
	}
	scratch := tableRef{Project: d.dest.Project, Dataset: d.dest.Dataset, Table: randomID("_bqfid_scratch_")}
	defer func() {
		_, _ = p.emuDo(context.WithoutCancel(ctx), http.MethodDelete, "projects/"+scratch.Project+"/datasets/"+scratch.Dataset+"/tables/"+scratch.Table, nil)
	}()
	if err := p.fillScratch(ctx, j, d, scratch); err != nil {
		return err
	}
	scratchMeta := p.tableMeta(ctx, scratch)
	if scratchMeta == nil {
		return invalid("fidelity: the scratch table for %s was not created", d.dest)
	}
	destFilter := "TRUE"
	if d.dest.Decorator != "" {
		destFilter = dayFilter(d.field, d.ftype, d.day)
		n, err := p.emuCount(ctx, j.project, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE `%s` IS NULL OR NOT (%s)", scratch.sql(), d.field, destFilter))
		if err != nil {
			return err
		}
		if n > 0 {
			return invalid("Some rows belong to different partitions rather than destination partition %s", d.dest.Decorator)
		}
	}
	if d.write == "WRITE_EMPTY" && d.destMeta != nil {
		n, err := p.emuCount(ctx, j.project, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s", d.dest.sql(), destFilter))
		if err != nil {
			return err
		}
		if n > 0 {
			return &apiError{Code: 409, Reason: "duplicate", Message: "Already Exists: Table " + strings.TrimSuffix(d.dest.String()+"$"+d.dest.Decorator, "$")}
		}
	}
	if d.destMeta == nil { // CREATE_IF_NEEDED: the new table is the scratch table's copy
		if _, err := p.emuQuery(ctx, j.project, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s", d.dest.sql(), scratch.sql())); err != nil {
			return err
		}
		p.setDecoratedStats(ctx, j, d, scratch, scratchMeta)
		return nil
	}
	cols, err := p.matchColumns(ctx, j, d, scratchMeta)
	if err != nil {
		return err
	}
	var sql strings.Builder
	sql.WriteString("BEGIN TRANSACTION;\n")
	if d.write == "WRITE_TRUNCATE" {
		fmt.Fprintf(&sql, "DELETE FROM %s WHERE %s;\n", d.dest.sql(), destFilter)
	}
	fmt.Fprintf(&sql, "INSERT INTO %s (%s) SELECT %s FROM %s;\nCOMMIT TRANSACTION;", d.dest.sql(), cols, cols, scratch.sql())
	if _, err := p.emuQuery(ctx, j.project, sql.String()); err != nil {
		return err
	}
	p.setDecoratedStats(ctx, j, d, scratch, scratchMeta)
	return nil
}

func (p *Proxy) setDecoratedStats(ctx context.Context, j *job, d *decorPlan, scratch tableRef, scratchMeta map[string]any) {
	rows, _ := p.emuCount(ctx, j.project, "SELECT COUNT(*) FROM "+scratch.sql())
	stats := map[string]any{}
	switch d.kind {
	case "load":
		stats["load"] = map[string]any{"outputRows": strconv.FormatInt(rows, 10)}
	case "copy":
		stats["copy"] = map[string]any{"copiedRows": strconv.FormatInt(rows, 10)}
	case "query":
		stats["query"] = map[string]any{"totalBytesProcessed": "0", "statementType": "SELECT"}
	}
	p.jobs.mu.Lock()
	j.emuJob = map[string]any{"statistics": stats}
	j.schema = scratchMeta["schema"]
	p.jobs.mu.Unlock()
}

// fillScratch writes the job's rows into the scratch table.
func (p *Proxy) fillScratch(ctx context.Context, j *job, d *decorPlan, scratch tableRef) *apiError {
	c, _ := j.config[j.kind].(map[string]any)
	switch d.kind {
	case "copy":
		_, err := p.emuQuery(ctx, j.project, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s WHERE %s", scratch.sql(), d.src.sql(), d.srcFilter))
		return err
	case "load":
		schema := d.destMeta["schema"]
		if s, ok := c["schema"]; ok {
			schema = s
		}
		if _, err := p.emuDo(ctx, http.MethodPost, "projects/"+scratch.Project+"/datasets/"+scratch.Dataset+"/tables", map[string]any{
			"tableReference": scratch.json(false), "schema": schema,
		}); err != nil {
			return translate("load", asAPIError(err))
		}
		lc := map[string]any{}
		for k, v := range c {
			lc[k] = v
		}
		lc["destinationTable"] = scratch.json(false)
		lc["writeDisposition"] = "WRITE_APPEND"
		lc["createDisposition"] = "CREATE_NEVER"
		for _, k := range []string{"timePartitioning", "rangePartitioning", "clustering", "schema"} {
			delete(lc, k)
		}
		_, err := p.emuJob(ctx, j.project, "load", map[string]any{"load": lc}, j.media, j.mediaType)
		return err
	default: // the emulator ignores destinationTable: CREATE TABLE … AS the query
		qc := map[string]any{}
		for k, v := range c {
			qc[k] = v
		}
		sql, _ := c["query"].(string)
		qc["query"] = fmt.Sprintf("CREATE TABLE %s AS\n%s", scratch.sql(), strings.TrimRight(strings.TrimSpace(sql), ";"))
		for _, k := range []string{"destinationTable", "writeDisposition", "createDisposition", "timePartitioning", "rangePartitioning", "clustering", "schemaUpdateOptions"} {
			delete(qc, k)
		}
		_, err := p.emuJob(ctx, j.project, "query", map[string]any{"query": qc}, nil, "")
		return err
	}
}

// matchColumns returns the scratch table's columns, quoted and joined, after
// checking that the destination has them (adding them when the job allows
// field addition).
func (p *Proxy) matchColumns(ctx context.Context, j *job, d *decorPlan, scratchMeta map[string]any) (string, *apiError) {
	have := map[string]bool{}
	for _, f := range schemaFields(d.destMeta) {
		have[strings.ToLower(f.name)] = true
	}
	var cols []string
	for _, f := range schemaFields(scratchMeta) {
		if !have[strings.ToLower(f.name)] && !p.hasColumn(ctx, j.project, d.dest, f.name) {
			if !d.allowAdd {
				return "", invalid("Provided Schema does not match Table %s. Cannot add fields (field: %s)", d.dest, f.name)
			}
			if _, err := p.emuQuery(ctx, j.project, fmt.Sprintf("ALTER TABLE %s ADD COLUMN `%s` %s", d.dest.sql(), f.name, f.typ)); err != nil {
				return "", err
			}
		}
		cols = append(cols, "`"+f.name+"`")
	}
	return strings.Join(cols, ", "), nil
}

// emuCount runs a one-number query on the emulator.
func (p *Proxy) emuCount(ctx context.Context, project, sql string) (int64, *apiError) {
	res, err := p.emuDo(ctx, http.MethodPost, "projects/"+project+"/queries", map[string]any{"query": sql, "useLegacySql": false})
	if err != nil {
		return 0, translate("query", asAPIError(err))
	}
	if errs, ok := res["errors"].([]any); ok && len(errs) > 0 {
		m, _ := errs[0].(map[string]any)
		msg, _ := m["message"].(string)
		return 0, invalid("fidelity check failed: %s", msg)
	}
	rows, _ := res["rows"].([]any)
	if len(rows) != 1 {
		return 0, invalid("fidelity check returned %d rows", len(rows))
	}
	f, _ := rows[0].(map[string]any)["f"].([]any)
	if len(f) != 1 {
		return 0, invalid("fidelity check returned no value")
	}
	v, _ := f[0].(map[string]any)["v"].(string)
	n, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil {
		return 0, invalid("fidelity check returned %q", v)
	}
	return n, nil
}

// hasColumn asks the emulator's data rather than its metadata, which does
// not show columns added by ALTER TABLE.
func (p *Proxy) hasColumn(ctx context.Context, project string, t tableRef, col string) bool {
	res, err := p.emuDo(ctx, http.MethodPost, "projects/"+project+"/queries", map[string]any{
		"query": fmt.Sprintf("SELECT `%s` FROM %s LIMIT 0", col, t.sql()), "useLegacySql": false,
	})
	if err != nil {
		return false
	}
	errs, _ := res["errors"].([]any)
	return len(errs) == 0
}
