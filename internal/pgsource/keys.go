package pgsource

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/schema"
)

// A key column of any kind (schema.KeyKind) is read in one order that
// BigQuery agrees with, because positions are compared on both sides
// (staging's last position, rows staged up to a position):
//   - integers and numeric(p,s) by value (BigQuery INT64 and NUMERIC);
//   - text COLLATE "C": byte order, which in a UTF-8 database is the code
//     point order BigQuery compares STRING by
//     (https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#comparable_data_types);
//     a (timestamp, key) index in another collation cannot serve that
//     order, and `planner check` says so (Source.KeyCheck);
//   - uuid as uuid: byte order, which is the order of its lowercase
//     hyphenated text, the form it travels in.
// A key's canonical text (what sync_control keeps and fingerprints hash)
// is PostgreSQL's text of it, a numeric's with trailing fractional zeros
// trimmed (trim_scale: 1.50 and 1.5 are one value).

// keyKind is the kind of key column c, or an error saying why it cannot
// be one.
func keyKind(c column) (schema.KeyKind, error) {
	switch {
	case c.Repeated:
	case c.oid == oidInt2 || c.oid == oidInt4 || c.oid == oidInt8:
		return schema.KeyInt, nil
	case c.oid == oidText || c.oid == oidVarchar:
		return schema.KeyText, nil
	case c.oid == oidUUID:
		return schema.KeyUUID, nil
	case c.oid == oidNumeric && c.Type == schema.Numeric:
		return schema.KeyNumeric, nil
	case c.oid == oidNumeric:
		return 0, fmt.Errorf("id column %q is %s, which travels as text: BigQuery would order its values as text, "+
			"not as numbers; a numeric key needs a declared precision and scale that BigQuery NUMERIC holds "+
			"(numeric(p,s) with s <= 9 and p-s <= 29)", c.Name, c.SourceType)
	}
	return 0, fmt.Errorf("id column %q is %s; it must be smallint, integer, bigint, numeric(p,s), uuid, text or varchar", c.Name, c.SourceType)
}

// keyOrder is the key column as ordered and compared (SQL).
func keyOrder(kind schema.KeyKind, name string) string {
	id := pgx.Identifier{name}.Sanitize()
	if kind == schema.KeyText {
		return id + ` COLLATE "C"`
	}
	return id
}

// keyParam is placeholder n as a value of the key column: integers travel
// as int64, any other key as its canonical text.
func keyParam(kind schema.KeyKind, n int) string {
	switch kind {
	case schema.KeyText:
		return fmt.Sprintf(`$%d::text COLLATE "C"`, n)
	case schema.KeyUUID:
		return fmt.Sprintf("$%d::text::uuid", n)
	case schema.KeyNumeric:
		return fmt.Sprintf("$%d::text::numeric", n)
	}
	return fmt.Sprintf("$%d", n)
}

// keyText is the canonical text of the key column (SQL), for keys that
// are not integers; for integers, its decimal text.
func keyText(kind schema.KeyKind, name string) string {
	id := pgx.Identifier{name}.Sanitize()
	if kind == schema.KeyNumeric {
		return "trim_scale(" + id + ")::text"
	}
	return id + "::text"
}

// keyHashSQL is schema.KeyHash of the key column's canonical text (SQL).
func keyHashSQL(kind schema.KeyKind, name string) string {
	return fmt.Sprintf("('x' || substr(md5(%s), 1, 8))::bit(32)::bigint", keyText(kind, name))
}

// keyArg is the value bound to keyParam for position k.
func keyArg(k schema.Key) any {
	if k.Kind == schema.KeyInt {
		return k.ID
	}
	return k.Text
}
