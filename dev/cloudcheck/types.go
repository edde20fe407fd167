package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/jackc/pgx/v5"
	"google.golang.org/api/iterator"

	"github.com/pgbq/pgbq/internal/bqvalue"
)

// typesTable holds one column of every type of the contract (docs/types.md)
// and rows of their edge values (years 1 and 9999 among them), on a day
// inside BigQuery's day partitions and on two outside them (0001-01-01, the
// first day the contract keeps, and 1959-12-31, the last before the
// partitions begin). A day of year 9999 is still to come, so no loader
// would sync it yet.
const typesTable = "cloudcheck_types"

// How a column's BigQuery value is compared with PostgreSQL's text.
const (
	asText  = iota // the value's text
	asFloat        // shortest float64 text on both sides
	asRat          // NUMERIC: exact rationals
	asJSON         // jsonb-normalised on both sides (BigQuery's JSON normalises as jsonb does)
)

type typeCol struct {
	name, ddl string
	pg        string // SQL rendering the column as text for comparison
	kind      int
}

const usFormat = `'YYYY-MM-DD"T"HH24:MI:SS.US'`

var typeCols = []typeCol{
	{"i2", "smallint", "i2::text", asText},
	{"i8", "bigint", "i8::text", asText},
	{"f4", "real", "f4::float8::text", asFloat},
	{"f8", "double precision", "f8::text", asFloat},
	{"ok", "boolean", "ok::text", asText},
	{"tx", "text", "tx", asText},
	{"ch", `"char"`, "ch::text", asText},
	{"cn", "char(4)", "cn", asText}, // char(n)::text would trim the padding
	{"by", "bytea", "encode(by, 'hex')", asText},
	{"n2", "numeric(38,9)", "n2::text", asRat},
	{"nu", "numeric", "nu::text", asText},
	{"js", "json", "js::jsonb::text", asJSON},
	{"jb", "jsonb", "jb::text", asJSON},
	{"dt", "date", "dt::text", asText},
	{"lt", "timestamp", "to_char(lt, " + usFormat + ")", asText},
	{"tm", "time", "to_char('2000-01-01'::date + tm, 'HH24:MI:SS.US')", asText},
	{"tz", "timetz", "tz::text", asText},
	{"iv", "interval", "iv::text", asText},
	{"uu", "uuid", "uu::text", asText},
	{"ip", "inet", "nullif(format('%s', ip), '')", asText}, // inet's text form: no /128 on a host address
	{"en", "cloudcheck_mood", "en::text", asText},
	{"dm", "cloudcheck_small", "dm::text", asText},
	{"ai", "bigint[]", "coalesce(array_to_string(ai, '|'), '')", asText},
	{"at", "text[]", "coalesce(array_to_string(at, '|'), '')", asText},
	{"ad", "date[]", "coalesce(array_to_string(ad, '|'), '')", asText},
	{"al", "timestamp[]", "coalesce((SELECT string_agg(to_char(e, " + usFormat + "), '|' ORDER BY o) FROM unnest(al) WITH ORDINALITY u(e, o)), '')", asText},
	{"aj", "jsonb[]", "coalesce((SELECT string_agg(e::text, '|' ORDER BY o) FROM unnest(aj) WITH ORDINALITY u(e, o)), '')", asJSON},
	{"i4", "integer", "i4::text", asText},
	{"vc", "varchar(12)", "vc::text", asText},
	{"nm", "name", "nm::text", asText},
	{"cd", "cidr", "cd::text", asText},
	{"mc", "macaddr", "mc::text", asText},
	{"m8", "macaddr8", "m8::text", asText},
}

// typeDays are the days typeRows fall on.
var typeDays = []time.Time{
	time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC),
	time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(1959, 12, 31, 0, 0, 0, 0, time.UTC),
}

// typeRows: minimum and maximum values, empty and NULL ones, JSON whose
// text jsonb normalises, years 1 and 9999, microseconds at the ends of a
// day.
const typeRows = `
 (1, '2024-01-31 00:00:00+00', -32768, -9223372036854775808, 3.4028235e38, 5e-324, true, 'ünïcødé ✓', '', 'a', '\x00ff',
  -99999999999999999999999999999.999999999, '1234567890123456789012345678901234567890.0123456789',
  '{"b": 1, "a": [1, 2.5, {"c": null}],   "s": "x\ny", "b": 2}', '{"n": 9223372036854775807, "u": 18446744073709551615, "f": 1e22}',
  '0001-01-01', '0001-01-01 00:00:00', '00:00:00', '00:00:00+00', 'P0D', '00000000-0000-0000-0000-000000000000', '::1',
  'sad', 1, '{1,-2,9223372036854775807}', '{"a","","ü"}', '{0001-01-01,9999-12-31}',
  '{"0001-01-01 00:00:00","9999-12-31 23:59:59.999999"}', ARRAY['{"k": [1, {"z": 2, "a": 1}]}'::jsonb, 'null'::jsonb, '"s"'::jsonb],
  -2147483648, '', 'n', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05'),
 (2, '2024-01-31 23:59:59.999999+00', 32767, 9223372036854775807, '-Infinity', 'NaN', false, 'x', 'z', 'abcd', '\x',
  99999999999999999999999999999.999999999, 'NaN', '[]', '{}',
  '9999-12-31', '9999-12-31 23:59:59.999999', '23:59:59.999999', '12:34:56.789+05:30',
  '1 year 2 months 3 days 04:05:06.789', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '2001:db8::1/64',
  'happy', 2147483647, '{}', '{}', NULL, NULL, '{}',
  2147483647, 'twelve chars', 'pg_name', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00'),
 (3, '2024-01-31 12:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL),
 (4, '0001-01-01 00:00:00+00', 0, 0, 0, 0, true, 'year 1', '', 'y1', '\x01', 0.000000001, '-Infinity', '0', 'true',
  '0001-01-01', '0001-01-01 00:00:00.000001', '00:00:00.000001', '23:59:59-12', '1 mon 00:00:00.000001', NULL, '10.0.0.0/8',
  'ok', 7, '{0}', '{"year 1"}', '{0001-01-01}', '{"0001-01-01 00:00:00.000001"}', '{}',
  0, 'year 1', 'y1', '::/0', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff:ff:ff'),
 (5, '1959-12-31 23:59:59.999999+00', 1, 1, 1, 1, false, 'year 9999', 'q', 'y999', '\xff', -0.000000001, 'Infinity', '"\u00e9"', '[1, "two", {}]',
  '9999-12-31', '9999-12-31 23:59:59.999998', '12:00:00', '00:00:00+14', '1 day', NULL, NULL,
  NULL, NULL, '{}', '{}', '{9999-12-31}', '{}', '{}',
  NULL, 'ü', NULL, '192.168.0.0/16', NULL, NULL)`

// seedTypes creates typesTable with typeRows.
func seedTypes(ctx context.Context, conn *pgx.Conn) error {
	defs := make([]string, len(typeCols))
	for i, c := range typeCols {
		defs[i] = c.name + " " + c.ddl
	}
	_, err := conn.Exec(ctx, `
DROP TABLE IF EXISTS `+typesTable+`;
DROP TYPE IF EXISTS cloudcheck_mood; DROP DOMAIN IF EXISTS cloudcheck_small;
CREATE TYPE cloudcheck_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN cloudcheck_small AS integer CHECK (VALUE > 0);
CREATE TABLE `+typesTable+` (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, `+strings.Join(defs, ", ")+`);
CREATE INDEX ON `+typesTable+` (created_at, id);
INSERT INTO `+typesTable+` VALUES `+typeRows+`;
ANALYZE `+typesTable)
	if err != nil {
		return fmt.Errorf("seed %s: %w", typesTable, err)
	}
	return nil
}

// syncTypes syncs every day of typesTable through the loader and compares
// every value with PostgreSQL's: "exact", or the first difference.
func (c *check) syncTypes(ctx context.Context, dsn string) (string, error) {
	s, err := c.openSyncer(ctx, dsn, typesTable)
	if err != nil {
		return "", err
	}
	defer s.Source.Close()
	for _, day := range typeDays {
		if _, err := c.syncDayWith(ctx, s, day); err != nil {
			return "", fmt.Errorf("sync %s %s: %w", typesTable, day.Format(time.DateOnly), err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	want, err := pgTypeRows(ctx, conn)
	if err != nil {
		return "", err
	}
	names := []string{"`id`"}
	for _, col := range typeCols {
		names = append(names, "`"+col.name+"`")
	}
	it, err := s.Warehouse.Query(ctx, "SELECT "+strings.Join(names, ", ")+" FROM "+s.Warehouse.DestRef()+" ORDER BY id")
	if err != nil {
		return "", fmt.Errorf("read %s from BigQuery: %w", typesTable, err)
	}
	n := 0
	for ; ; n++ {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read %s from BigQuery: %w", typesTable, err)
		}
		if n >= len(want) {
			return fmt.Sprintf("extra_row_id_%v", row[0]), nil
		}
		if got := bqvalue.Text(row[0]); got != want[n][0] {
			return fmt.Sprintf("row_%d_id_%s", n, got), nil
		}
		for i, col := range typeCols {
			got := bqvalue.Text(row[i+1])
			if col.kind == asJSON {
				if got, err = normJSON(ctx, conn, row[i+1]); err != nil {
					return "", err
				}
			}
			if got != want[n][i+1] {
				return fmt.Sprintf("differs(id=%s,%s:bigquery=%q,postgres=%q)", want[n][0], col.name, got, want[n][i+1]), nil
			}
		}
	}
	if n != len(want) {
		return fmt.Sprintf("rows=%d_of_%d", n, len(want)), nil
	}
	return "exact", nil
}

// pgTypeRows renders every row of typesTable as the comparison's text.
func pgTypeRows(ctx context.Context, conn *pgx.Conn) ([][]string, error) {
	if _, err := conn.Exec(ctx, "SET intervalstyle = iso_8601"); err != nil {
		return nil, fmt.Errorf("set intervalstyle: %w", err)
	}
	exprs := []string{"id::text"}
	for _, c := range typeCols {
		exprs = append(exprs, "coalesce("+c.pg+", '<null>')")
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+typesTable+" ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read %s from PostgreSQL: %w", typesTable, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals := make([]string, len(exprs))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read %s from PostgreSQL: %w", typesTable, err)
		}
		for i, c := range typeCols {
			v := vals[i+1]
			switch {
			case v == bqvalue.Null:
			case c.kind == asFloat:
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return nil, fmt.Errorf("column %s: %w", c.name, err)
				}
				vals[i+1] = strconv.FormatFloat(f, 'g', -1, 64)
			case c.kind == asRat:
				q, ok := new(big.Rat).SetString(v)
				if !ok {
					return nil, fmt.Errorf("column %s: %q is not a number", c.name, v)
				}
				vals[i+1] = q.RatString()
			}
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// normJSON is a JSON value (or array of them) in jsonb's text.
func normJSON(ctx context.Context, conn *pgx.Conn, v bigquery.Value) (string, error) {
	one := func(s string) (string, error) {
		var out string
		if err := conn.QueryRow(ctx, "SELECT $1::jsonb::text", s).Scan(&out); err != nil {
			return "", fmt.Errorf("normalise JSON %q from BigQuery: %w", s, err)
		}
		return out, nil
	}
	switch x := v.(type) {
	case nil:
		return bqvalue.Null, nil
	case string:
		return one(x)
	case []bigquery.Value:
		parts := make([]string, len(x))
		for i, e := range x {
			s, _ := e.(string)
			var err error
			if parts[i], err = one(s); err != nil {
				return "", err
			}
		}
		return strings.Join(parts, "|"), nil
	}
	return fmt.Sprintf("%T %v", v, v), nil
}
