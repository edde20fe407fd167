package pgsource

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgbq/pgbq/internal/schema"
)

// ErrUnsupported marks a table the source cannot sync as configured
// (missing columns, unmappable types). It is permanent.
var ErrUnsupported = errors.New("unsupported source table")

// SpecError says which part of a TableSpec is wrong: "table", "id" or
// "timestamp", so that callers can name their own setting.
type SpecError struct {
	Field string
	Msg   string
}

func (e *SpecError) Error() string { return e.Msg }

// Unwrap makes a SpecError an ErrUnsupported.
func (e *SpecError) Unwrap() error { return ErrUnsupported }

// PostgreSQL type OIDs pgbq maps.
const (
	oidBool        = 16
	oidBytea       = 17
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidCidr        = 650
	oidFloat4      = 700
	oidFloat8      = 701
	oidInet        = 869
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
	oidChar        = 18
	oidMacaddr8    = 774
	oidMacaddr     = 829
	oidTime        = 1083
	oidInterval    = 1186
	oidTimetz      = 1266
)

// column is a source column with what the decoder needs.
type column struct {
	schema.Column
	oid    uint32 // base type (domains resolved)
	format int16  // result format: 0 text, 1 binary
	// elem is an array column's element; elemAsText means the column is
	// selected as text[] so that elements arrive in their text form.
	elem       *column
	elemAsText bool
	// numericFraction is the declared scale of a numeric(p,s) mapped to NUMERIC.
	numericFraction int
	// utf8 says the column's text arrives as valid UTF-8 (PostgreSQL
	// converted it to the client encoding UTF-8), so the decoder need not
	// check it.
	utf8 bool
}

// describeSQL lists the columns with their base type (through a domain)
// and whether that type is an enum.
const describeSQL = `
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       bt.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       bt.typtype = 'e', bt.typcategory = 'A', COALESCE(et.oid, 0), COALESCE(et.typtype = 'e', false),
       has_column_privilege(c.oid, a.attnum, 'SELECT')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON bt.typcategory = 'A' AND et.oid = bt.typelem
WHERE c.oid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// TableSpec names a source table and its keyset columns, as configured.
type TableSpec struct {
	Table           string // optionally schema-qualified, PostgreSQL name syntax
	IDColumn        string
	TimestampColumn string
	// TimeZone, for a timestamp-without-time-zone column, is the IANA zone
	// its wall-clock values are in; empty means UTC.
	TimeZone string
	// Rename maps source column names to the names their values travel
	// under (for names BigQuery refuses); Exclude lists columns not
	// synced at all. The key columns may be renamed, not excluded.
	Rename  map[string]string
	Exclude []string
}

// rawColumn is one row of describeSQL.
type rawColumn struct {
	nsp, rel, name, typeName string
	oid                      uint32
	typmod                   int32
	isEnum                   bool
	isArray                  bool
	elemOID                  uint32
	elemIsEnum               bool
	canSelect                bool
}

func scanColumns(ctx context.Context, pool *pgxpool.Pool, table string) ([]rawColumn, error) {
	rows, err := pool.Query(ctx, describeSQL, table)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	defer rows.Close()
	var out []rawColumn
	for rows.Next() {
		var r rawColumn
		if err := rows.Scan(&r.nsp, &r.rel, &r.name, &r.typeName, &r.oid, &r.typmod, &r.isEnum, &r.isArray, &r.elemOID, &r.elemIsEnum, &r.canSelect); err != nil {
			return nil, fmt.Errorf("describe %s: %w", table, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	return out, nil
}

// describe reads the table's columns and maps each to a logical type.
func describe(ctx context.Context, pool *pgxpool.Pool, spec TableSpec) (pgx.Identifier, []column, schema.Table, error) {
	raw, err := scanColumns(ctx, pool, spec.Table)
	if err != nil {
		return nil, nil, schema.Table{}, err
	}
	var ident pgx.Identifier
	var cols []column
	var errs []error
	excluded := map[string]bool{}
	for _, name := range spec.Exclude {
		excluded[name] = true
	}
	seen := map[string]bool{}
	for _, r := range raw {
		ident = pgx.Identifier{r.nsp, r.rel}
		seen[r.name] = true
		if excluded[r.name] {
			if r.name == spec.IDColumn || r.name == spec.TimestampColumn {
				errs = append(errs, &SpecError{Field: "exclude", Msg: fmt.Sprintf("column %q is the id or timestamp column: it cannot be excluded", r.name)})
			}
			continue
		}
		if !r.canSelect {
			errs = append(errs, fmt.Errorf("%w: table %s: no SELECT privilege on column %q: GRANT SELECT ON %s TO the role pgbq connects as, or exclude the column",
				ErrUnsupported, ident.Sanitize(), r.name, ident.Sanitize()))
			continue
		}
		col, err := mapRaw(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: table %s: %v", ErrUnsupported, ident.Sanitize(), err))
			continue
		}
		cols = append(cols, col)
	}
	if ident == nil {
		return nil, nil, schema.Table{}, &SpecError{Field: "table", Msg: fmt.Sprintf("table %q not found (or it has no columns)", spec.Table)}
	}
	for _, name := range spec.Exclude {
		if !seen[name] {
			errs = append(errs, &SpecError{Field: "exclude", Msg: fmt.Sprintf("excluded column %q not found in table %s", name, ident.Sanitize())})
		}
	}
	for name := range spec.Rename {
		if !seen[name] {
			errs = append(errs, &SpecError{Field: "columns", Msg: fmt.Sprintf("renamed column %q not found in table %s", name, ident.Sanitize())})
		} else if excluded[name] {
			errs = append(errs, &SpecError{Field: "columns", Msg: fmt.Sprintf("column %q is both renamed and excluded", name)})
		}
	}
	t := schema.Table{Source: ident.Sanitize(), IDIndex: -1, TimestampIndex: -1}
	for i, c := range cols {
		// The source keeps reading the column by its own name (cols); the
		// neutral table, which BigQuery and the encoder see, carries the
		// name it travels under.
		tc := c.Column
		if to, ok := spec.Rename[c.Name]; ok {
			tc.Name, tc.SourceName = to, c.Name
		}
		t.Columns = append(t.Columns, tc)
		switch c.Name {
		case spec.IDColumn:
			t.IDIndex = i
		case spec.TimestampColumn:
			t.TimestampIndex = i
		}
	}
	if t.IDIndex < 0 {
		errs = append(errs, &SpecError{Field: "id", Msg: fmt.Sprintf("id column %q not found in table %s", spec.IDColumn, ident.Sanitize())})
	} else if kind, err := keyKind(cols[t.IDIndex]); err != nil {
		errs = append(errs, &SpecError{Field: "id", Msg: err.Error()})
	} else {
		t.KeyKind = kind
	}
	if t.TimestampIndex < 0 {
		errs = append(errs, &SpecError{Field: "timestamp", Msg: fmt.Sprintf("timestamp column %q not found in table %s", spec.TimestampColumn, ident.Sanitize())})
	} else if c := cols[t.TimestampIndex]; c.oid != oidTimestamptz && c.oid != oidTimestamp {
		errs = append(errs, &SpecError{Field: "timestamp", Msg: fmt.Sprintf("timestamp column %q is %s; it must be timestamp with time zone (or timestamp without time zone, in UTC or a stated time zone)", c.Name, c.SourceType)})
	} else if spec.TimeZone != "" {
		if c.oid != oidTimestamp {
			errs = append(errs, &SpecError{Field: "time_zone", Msg: fmt.Sprintf("a time zone applies only to a timestamp without time zone column; %q is %s", c.Name, c.SourceType)})
		} else if _, err := time.LoadLocation(spec.TimeZone); err != nil {
			errs = append(errs, &SpecError{Field: "time_zone", Msg: fmt.Sprintf("%q is not a time zone (an IANA name such as Europe/Berlin)", spec.TimeZone)})
		} else {
			// Zoned wall-clock values travel as instants: TIMESTAMP.
			cols[t.TimestampIndex].Type = schema.Timestamp
			t.Columns[t.TimestampIndex].Type = schema.Timestamp
		}
	}
	if len(errs) > 0 {
		return nil, nil, schema.Table{}, errors.Join(errs...)
	}
	return ident, cols, t, nil
}

// mapRaw maps a column, arrays included: a one-dimensional array of a
// mappable type travels as a BigQuery REPEATED column of that type.
func mapRaw(r rawColumn) (column, error) {
	if !r.isArray {
		return mapColumn(r.name, r.typeName, r.oid, r.typmod, r.isEnum)
	}
	elem, err := mapColumn(r.name, r.typeName, r.elemOID, r.typmod, r.elemIsEnum)
	if err != nil || elem.elem != nil {
		return column{}, fmt.Errorf("column %q has type %s, which pgbq cannot sync", r.name, r.typeName)
	}
	c := column{Column: schema.Column{Name: r.name, SourceType: r.typeName, Type: elem.Type, Repeated: true},
		oid: r.oid, format: 1, elem: &elem}
	if elem.format == 0 {
		// Selected as text[]: each element in its text form, still in
		// the binary array envelope.
		c.elemAsText = true
		elem.oid = oidText
	}
	return c, nil
}

// mapColumn decides how one column travels. Text result format is used
// where PostgreSQL's text form is already the value BigQuery should hold.
func mapColumn(name, typeName string, oid uint32, typmod int32, isEnum bool) (column, error) {
	c := column{Column: schema.Column{Name: name, SourceType: typeName}, oid: oid, format: 1}
	if isEnum {
		c.Type, c.format = schema.String, 0 // the label
		return c, nil
	}
	switch oid {
	case oidInt2, oidInt4, oidInt8:
		c.Type = schema.Int64
	case oidFloat4, oidFloat8:
		c.Type = schema.Float64
	case oidBool:
		c.Type = schema.Bool
	case oidText, oidVarchar, oidBpchar, oidName, oidChar:
		c.Type = schema.String
	case oidTime:
		c.Type = schema.Time
	case oidBytea:
		c.Type = schema.Bytes
	case oidJSON, oidJSONB:
		c.Type = schema.JSON
	case oidDate:
		c.Type = schema.Date
	case oidTimestamptz:
		c.Type = schema.Timestamp
	case oidTimestamp:
		c.Type = schema.Datetime
	case oidUUID, oidInet, oidCidr, oidMacaddr, oidMacaddr8, oidTimetz, oidInterval:
		// PostgreSQL's text form: intervals in ISO 8601 (the session sets
		// intervalstyle), times with their offset.
		c.Type, c.format = schema.String, 0
	case oidNumeric:
		c.format = 0
		// typmod encodes ((precision << 16) | scale) + 4; -1 is unconstrained.
		if typmod >= 4 {
			precision, scale := int((typmod-4)>>16)&0xffff, int((typmod-4)&0xffff)
			if scale >= 0 && scale <= schema.NumericScale && precision-scale <= 38-schema.NumericScale {
				c.Type, c.numericFraction = schema.Numeric, scale
				break
			}
		}
		// Unconstrained or wider than NUMERIC: the exact decimal text, so
		// no value is ever rounded.
		c.Type = schema.String
	default:
		return c, fmt.Errorf("column %q has type %s, which pgbq cannot sync", name, typeName)
	}
	return c, nil
}
