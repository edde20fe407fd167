package bqfidelity

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// How BigQuery types a Parquet load, read from the uploaded file's footer.
//
// Without a schema in the job, "the table schema is automatically
// retrieved from the self-describing source data", each column typed by
// the page's conversion table: INT32/INT64 → INTEGER, FLOAT/DOUBLE →
// FLOAT, BOOLEAN → BOOLEAN, BYTE_ARRAY/FIXED_LEN_BYTE_ARRAY → BYTES,
// INT96 → TIMESTAMP; logical types STRING/ENUM → STRING, DATE → DATE,
// TIME → TIME, TIMESTAMP → TIMESTAMP (isAdjustedToUTC is not mentioned:
// the stricter reading types it TIMESTAMP either way), DECIMAL → NUMERIC
// (or BIGNUMERIC beyond NUMERIC's precision and scale), LIST → REPEATED
// with enable_list_inference.
// https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-parquet#parquet_schemas
// https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-parquet#parquet_conversions
//
// A load that appends to or overwrites a table whose columns have other
// types fails: "Provided Schema does not match Table …. Field x has
// changed type from DATETIME to TIMESTAMP", reason invalid
// (https://cloud.google.com/bigquery/docs/error-messages; the schema of an
// existing table is changed only by the schema update options, which
// never change a column's type:
// https://cloud.google.com/bigquery/docs/managing-table-schemas).
//
// With a schema in the job, the given types must be the table's, and the
// file's columns must convert to them: a column's conversion-table type,
// or DATETIME for a TIMESTAMP whose isAdjustedToUTC is false (the reading
// of Google's own clients, which send DATETIME for such columns).
//
// "If you use a batch load job to ingest JSON data into a table, the
// source data must be in CSV, Avro, or JSON format. Other batch load
// formats are not supported"
// (https://cloud.google.com/bigquery/docs/json-data#limitations): a
// Parquet load that fills a JSON column is refused.

// parquetColumn is one top-level column of a Parquet file.
type parquetColumn struct {
	name     string
	typ      string // the conversion table's BigQuery type
	repeated bool
	local    bool // a TIMESTAMP with isAdjustedToUTC false
}

// parquetColumns reads the columns of a Parquet file from its footer.
func parquetColumns(data []byte, listInference bool) ([]parquetColumn, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, err
	}
	els := f.Metadata().Schema
	if len(els) == 0 {
		return nil, fmt.Errorf("no schema in the footer")
	}
	var out []parquetColumn
	children := func(e format.SchemaElement) int32 { return e.NumChildren.V }
	i := 1
	for range children(els[0]) {
		if i >= len(els) {
			return nil, fmt.Errorf("the footer's schema ends early")
		}
		e := els[i]
		col := parquetColumn{name: e.Name}
		_, listType := e.LogicalType.Value.(*format.ListType)
		isList := listType || e.ConvertedType.Valid && e.ConvertedType.V == deprecated.List
		switch {
		case children(e) == 0:
			col.typ, col.local = parquetType(e)
			col.repeated = e.RepetitionType.Valid && e.RepetitionType.V == format.Repeated
			i++
		case isList && listInference && children(e) == 1 && i+2 < len(els) && children(els[i+1]) == 1 && children(els[i+2]) == 0:
			col.typ, col.local = parquetType(els[i+2])
			col.repeated = true
			i += 3
		default:
			col.typ = "RECORD"
			i = skipElement(els, i)
		}
		out = append(out, col)
	}
	return out, nil
}

// skipElement returns the index after element i and its descendants.
func skipElement(els []format.SchemaElement, i int) int {
	n := els[i].NumChildren.V
	i++
	for range n {
		if i >= len(els) {
			return i
		}
		i = skipElement(els, i)
	}
	return i
}

// parquetType is the conversion table's type of a leaf element.
func parquetType(e format.SchemaElement) (typ string, local bool) {
	switch lt := e.LogicalType.Value.(type) {
	case *format.StringType, *format.EnumType:
		return "STRING", false
	case *format.JsonType:
		return "JSON", false
	case *format.DateType:
		return "DATE", false
	case *format.TimeType:
		return "TIME", false
	case *format.TimestampType:
		return "TIMESTAMP", !lt.IsAdjustedToUTC
	case *format.DecimalType:
		return decimalType(lt.Scale, lt.Precision), false
	case *format.IntType:
		return "INTEGER", false
	}
	if e.ConvertedType.Valid {
		switch e.ConvertedType.V {
		case deprecated.UTF8, deprecated.Enum:
			return "STRING", false
		case deprecated.Json:
			return "JSON", false
		case deprecated.Date:
			return "DATE", false
		case deprecated.TimeMillis, deprecated.TimeMicros:
			return "TIME", false
		case deprecated.TimestampMillis, deprecated.TimestampMicros:
			return "TIMESTAMP", false
		case deprecated.Decimal:
			return decimalType(e.Scale.V, e.Precision.V), false
		}
	}
	if !e.Type.Valid {
		return "RECORD", false
	}
	switch e.Type.V {
	case format.Boolean:
		return "BOOLEAN", false
	case format.Int32, format.Int64:
		return "INTEGER", false
	case format.Int96:
		return "TIMESTAMP", false
	case format.Float, format.Double:
		return "FLOAT", false
	default:
		return "BYTES", false
	}
}

// decimalType: NUMERIC holds precision 38 with scale 9, BIGNUMERIC more.
func decimalType(scale, precision int32) string {
	if scale <= 9 && precision-scale <= 29 {
		return "NUMERIC"
	}
	return "BIGNUMERIC"
}

// legacyType names a field type as the REST API's schemas do.
func legacyType(t string) string {
	switch t = strings.ToUpper(t); t {
	case "INT64":
		return "INTEGER"
	case "FLOAT64":
		return "FLOAT"
	case "BOOL":
		return "BOOLEAN"
	case "STRUCT":
		return "RECORD"
	}
	return t
}

type tableField struct {
	name, typ string
	repeated  bool
}

func fieldsOf(schema any) []tableField {
	s, _ := schema.(map[string]any)
	fs, _ := s["fields"].([]any)
	var out []tableField
	for _, f := range fs {
		m, _ := f.(map[string]any)
		n, _ := m["name"].(string)
		t, _ := m["type"].(string)
		mode, _ := m["mode"].(string)
		out = append(out, tableField{name: n, typ: legacyType(t), repeated: strings.EqualFold(mode, "REPEATED")})
	}
	return out
}

// destFields are the table's columns: its metadata, plus the columns the
// emulator's metadata does not show (added by ALTER TABLE), with the types
// a query of the table reports.
func (p *Proxy) destFields(ctx context.Context, project string, t tableRef, meta map[string]any) []tableField {
	out := fieldsOf(meta["schema"])
	res, err := p.emuDo(ctx, http.MethodPost, "projects/"+project+"/queries", map[string]any{
		"query": "SELECT * FROM " + t.sql() + " LIMIT 0", "useLegacySql": false,
	})
	if err != nil {
		return out
	}
	for _, f := range fieldsOf(res["schema"]) {
		if !slices.ContainsFunc(out, func(g tableField) bool { return strings.EqualFold(g.name, f.name) }) {
			out = append(out, f)
		}
	}
	return out
}

func findField(fs []tableField, name string) (tableField, bool) {
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			return f, true
		}
	}
	return tableField{}, false
}

// checkLoadTyping refuses a Parquet load whose column types — the job's
// schema, else the file's by the conversion table — do not fit the
// destination as BigQuery would (see the comment at the top).
func (p *Proxy) checkLoadTyping(ctx context.Context, j *job) *apiError {
	c, _ := j.config["load"].(map[string]any)
	if j.kind != "load" || j.media == nil || !strings.EqualFold(fmt.Sprint(c["sourceFormat"]), "PARQUET") {
		return nil
	}
	dest, ok := refFromJSON(c["destinationTable"], j.project)
	if !ok {
		return nil
	}
	listInference := false
	if po, ok := c["parquetOptions"].(map[string]any); ok {
		listInference, _ = po["enableListInference"].(bool)
	}
	cols, err := parquetColumns(j.media, listInference)
	if err != nil {
		return invalid("Error while reading data, error message: Failed to read the Parquet footer: %v", err)
	}
	given, hasSchema := c["schema"]
	givenFields := fieldsOf(given)
	for _, f := range givenFields {
		if f.typ == "JSON" {
			return invalid("Unsupported field type: JSON (field %s): a Parquet load cannot fill a JSON column", f.name)
		}
	}
	meta := p.tableMeta(ctx, dest)
	if meta == nil {
		return nil // created by the load (CREATE_IF_NEEDED), or notFound later
	}
	have := p.destFields(ctx, j.project, dest, meta)
	// The types the load brings: the job's schema, else the file's.
	var load []tableField
	if hasSchema {
		for _, col := range cols {
			f, ok := findField(givenFields, col.name)
			if !ok {
				return invalid("Error while reading data, error message: Parquet column '%s' is not in the provided schema", col.name)
			}
			if !converts(col, f.typ) || col.repeated != f.repeated {
				return invalid("Error while reading data, error message: Parquet column '%s' has type %s%s which does not match the target type %s%s",
					col.name, col.typ, mode(col.repeated), f.typ, mode(f.repeated))
			}
		}
		load = givenFields
	} else {
		for _, col := range cols {
			load = append(load, tableField{name: col.name, typ: col.typ, repeated: col.repeated})
		}
	}
	for _, b := range load {
		if f, ok := findField(have, b.name); ok && f.typ == "JSON" {
			return invalid("Unsupported field type: JSON (field %s of %s): batch loads of JSON data take CSV, Avro or JSON files, not Parquet", f.name, dest)
		}
	}
	for _, b := range load {
		f, ok := findField(have, b.name)
		if !ok {
			continue // a field the load adds: matchColumns and the emulator decide
		}
		if f.typ != b.typ {
			return invalid("Provided Schema does not match Table %s. Field %s has changed type from %s to %s", dest, f.name, f.typ, b.typ)
		}
		if f.repeated != b.repeated {
			return invalid("Provided Schema does not match Table %s. Field %s has changed mode from %s to %s", dest, f.name, modeName(f.repeated), modeName(b.repeated))
		}
	}
	return nil
}

// converts reports whether a Parquet column loads into a field of type typ.
func converts(col parquetColumn, typ string) bool {
	return col.typ == typ || col.typ == "TIMESTAMP" && col.local && typ == "DATETIME"
}

func mode(repeated bool) string {
	if repeated {
		return " (REPEATED)"
	}
	return ""
}

func modeName(repeated bool) string {
	if repeated {
		return "REPEATED"
	}
	return "NULLABLE"
}
