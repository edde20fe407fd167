package bqfidelity

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// A column can be added to a table by tables.patch (or tables.update) with
// the schema plus the new NULLABLE or REPEATED column at its end
// (https://cloud.google.com/bigquery/docs/managing-table-schemas#add_an_empty_column).
// The emulator records such a schema in its catalog without adding the
// column to the DuckDB table behind it, so rows streamed or read with the
// column fail. The layer adds the column on the emulator first, with the
// DDL the emulator runs, then forwards the patch.

// ddlTypes are the DDL types of the simple field types.
var ddlTypes = map[string]string{
	"STRING": "STRING", "BYTES": "BYTES", "INTEGER": "INT64", "INT64": "INT64", "FLOAT": "FLOAT64", "FLOAT64": "FLOAT64",
	"BOOLEAN": "BOOL", "BOOL": "BOOL", "TIMESTAMP": "TIMESTAMP", "DATE": "DATE", "TIME": "TIME", "DATETIME": "DATETIME",
	"NUMERIC": "NUMERIC", "BIGNUMERIC": "BIGNUMERIC", "JSON": "JSON",
}

// addPatchedColumns adds, on the emulator, the columns a patch body
// appends to ref's schema. Columns it cannot spell in DDL (records) are
// left to the patch alone.
func (p *Proxy) addPatchedColumns(ctx context.Context, ref tableRef, raw []byte) *apiError {
	var body struct {
		Schema *struct {
			Fields []struct {
				Name string `json:"name"`
				Type string `json:"type"`
				Mode string `json:"mode"`
			} `json:"fields"`
		} `json:"schema"`
	}
	if json.Unmarshal(raw, &body) != nil || body.Schema == nil {
		return nil
	}
	meta := p.tableMeta(ctx, ref)
	if meta == nil {
		return nil
	}
	have := map[string]bool{}
	if s, ok := meta["schema"].(map[string]any); ok {
		fields, _ := s["fields"].([]any)
		for _, f := range fields {
			if m, ok := f.(map[string]any); ok {
				name, _ := m["name"].(string)
				have[strings.ToLower(name)] = true
			}
		}
	}
	if len(have) == 0 {
		return nil
	}
	for _, f := range body.Schema.Fields {
		typ, ok := ddlTypes[strings.ToUpper(f.Type)]
		if have[strings.ToLower(f.Name)] || !ok {
			continue
		}
		if strings.EqualFold(f.Mode, "REPEATED") {
			typ = "ARRAY<" + typ + ">"
		}
		sql := fmt.Sprintf("ALTER TABLE `%s.%s.%s` ADD COLUMN `%s` %s", ref.Project, ref.Dataset, ref.Table, f.Name, typ)
		if _, err := p.emuQuery(ctx, ref.Project, sql); err != nil {
			return err
		}
	}
	return nil
}
