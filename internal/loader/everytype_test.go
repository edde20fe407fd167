package loader

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/bqvalue"
	"github.com/pgbq/pgbq/internal/pgsource"
)

// everyType is one column of each type of the contract (README, "Types"),
// as PostgreSQL renders it for comparison (pg) and as the BigQuery value
// is rendered the same way (bq).
type everyType struct {
	name, ddl string
	pg        string // SQL of the column's text for comparison
	bq        func(r *rig, v bigquery.Value) string
	json      bool // a JSON column (or array of JSON)
}

// bqText is v as comparison text (bqvalue), in the columns' signature.
func bqText(_ *rig, v bigquery.Value) string { return bqvalue.Text(v) }

// bqJSON renders JSON jsonb-normalised: BigQuery normalises key order,
// whitespace and duplicate keys, so JSON equality is jsonb equality.
func bqJSON(r *rig, v bigquery.Value) string {
	norm := func(s string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var out string
		if err := r.pool.QueryRow(ctx, "SELECT $1::jsonb::text", s).Scan(&out); err != nil {
			r.t.Fatalf("normalise JSON %q: %v", s, err)
		}
		return out
	}
	switch x := v.(type) {
	case nil:
		return bqvalue.Null
	case string:
		return norm(x)
	case []bigquery.Value:
		parts := make([]string, len(x))
		for i, e := range x {
			s, _ := e.(string)
			parts[i] = norm(s)
		}
		return strings.Join(parts, "|")
	}
	return fmt.Sprintf("%T %v", v, v)
}

// bqFloat renders FLOAT64 as PostgreSQL's float8 text reads back.
func bqFloat(_ *rig, v bigquery.Value) string {
	f, ok := v.(float64)
	if !ok {
		return bqvalue.Null
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// bqRat renders NUMERIC as an exact rational.
func bqRat(_ *rig, v bigquery.Value) string {
	if x, ok := v.(*big.Rat); ok {
		return x.RatString()
	}
	return bqvalue.Null
}

const pgUS = `'YYYY-MM-DD"T"HH24:MI:SS.US'`

var everyTypes = []everyType{
	{"i2", "smallint", "i2::text", bqText, false},
	{"i4", "integer", "i4::text", bqText, false},
	{"i8", "bigint", "i8::text", bqText, false},
	{"f4", "real", "f4::float8::text", bqFloat, false},
	{"f8", "double precision", "f8::text", bqFloat, false},
	{"ok", "boolean", "ok::text", bqText, false},
	{"tx", "text", "tx", bqText, false},
	{"vc", "varchar(12)", "vc::text", bqText, false},
	{"nm", "name", "nm::text", bqText, false},
	{"ch", `"char"`, "ch::text", bqText, false},
	{"cn", "char(4)", "cn", bqText, false}, // padded: char(n)::text would trim
	{"by", "bytea", "encode(by, 'hex')", bqText, false},
	{"n2", "numeric(12,2)", "n2::text", bqRat, false},
	{"nu", "numeric", "nu::text", bqText, false},
	{"js", "json", "js::jsonb::text", bqJSON, true},
	{"jb", "jsonb", "jb::text", bqJSON, true},
	{"dt", "date", "dt::text", bqText, false},
	{"lt", "timestamp", "to_char(lt, " + pgUS + ")", bqText, false},
	{"tm", "time", "to_char('2000-01-01'::date + tm, 'HH24:MI:SS.US')", bqText, false},
	{"tz", "timetz", "tz::text", bqText, false},
	{"iv", "interval", "iv::text", bqText, false},
	{"uu", "uuid", "uu::text", bqText, false},
	{"ip", "inet", "nullif(format('%s', ip), '')", bqText, false}, // inet's output: no /128 on a host
	{"cd", "cidr", "cd::text", bqText, false},
	{"mc", "macaddr", "mc::text", bqText, false},
	{"m8", "macaddr8", "m8::text", bqText, false},
	{"en", "every_mood", "en::text", bqText, false},
	{"dm", "every_small", "dm::text", bqText, false},
	{"ai", "bigint[]", "coalesce(array_to_string(ai, '|'), '')", bqText, false},
	{"at", "text[]", "coalesce(array_to_string(at, '|'), '')", bqText, false},
	{"ad", "date[]", "coalesce(array_to_string(ad, '|'), '')", bqText, false},
	{"al", "timestamp[]", "coalesce((SELECT string_agg(to_char(e, " + pgUS + "), '|' ORDER BY o) FROM unnest(al) WITH ORDINALITY u(e, o)), '')", bqText, false},
	{"aj", "jsonb[]", "coalesce((SELECT string_agg(e::text, '|' ORDER BY o) FROM unnest(aj) WITH ORDINALITY u(e, o)), '')", bqJSON, true},
}

const everyRows = `
 (1, '2024-04-02 00:00:00+00', -32768, -2147483648, -9223372036854775808, 3.4028235e38, 0.1, true, 'ünïcødé ✓', '', 'n', 'a', 'ab', '\x00ff',
  -9999999999.99, '1234567890123456789012345678901234567890.0123456789',
  '{"b": 1, "a": [1, 2.5, {"c": null}],   "s": "x\ny"}', '{"n": 9223372036854775807, "u": 18446744073709551615, "f": 1e22}',
  '0001-01-01', '0001-01-01 00:00:00', '00:00:00', '00:00:00+00', 'P0D', '00000000-0000-0000-0000-000000000000', '::1', '10.0.0.0/8',
  '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', 'sad', 1, '{1,-2,9223372036854775807}', '{"a","","ü"}', '{0001-01-01,9999-12-31}',
  '{"2024-01-01 12:00:00.000001"}', ARRAY['{"k": [1, {"z": 2, "a": 1}]}'::jsonb, 'null'::jsonb, '"s"'::jsonb]),
 (2, '2024-04-02 12:00:00.000001+00', 32767, 2147483647, 9223372036854775807, '-Infinity', 'NaN', false, 'x', 'twelve chars', 'pg_name', 'z', 'abcd', '\x',
  0.01, 'NaN', '[]', '{}', '9999-12-31', '9999-12-31 23:59:59.999999', '23:59:59.999999', '12:34:56.789+05:30',
  '1 year 2 months 3 days 04:05:06.789', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '2001:db8::1/64', '2001:db8::/32',
  'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00', 'happy', 2147483647, '{}', '{}', NULL, NULL, '{}'),
 (3, '2024-04-02 23:59:59.999999+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`

// everyTypeTable makes every_all, with every column and the rows, and
// table, with every column or all but the JSON ones, holding the same
// rows; it returns table's columns (after id and created_at).
func everyTypeTable(r *rig, table string, withJSON bool) []everyType {
	r.exec(`CREATE TYPE every_mood AS ENUM ('sad', 'ok', 'happy'); CREATE DOMAIN every_small AS integer CHECK (VALUE > 0)`)
	var cols []everyType
	var all, defs, keep []string
	for _, c := range everyTypes {
		all = append(all, c.name+" "+c.ddl)
		if c.json && !withJSON {
			continue
		}
		cols = append(cols, c)
		defs = append(defs, c.name+" "+c.ddl)
		keep = append(keep, c.name)
	}
	r.exec(`CREATE TABLE every_all (id bigint, created_at timestamptz, ` + strings.Join(all, ", ") + `)`)
	r.exec(`INSERT INTO every_all VALUES ` + everyRows)
	r.exec(`CREATE TABLE ` + table + ` (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, ` + strings.Join(defs, ", ") + `);
INSERT INTO ` + table + ` SELECT id, created_at, ` + strings.Join(keep, ", ") + ` FROM every_all`)
	return cols
}

// A table with one column of every type of the contract syncs through the
// fidelity layer (Parquet load typing, JSON loads, ON FALSE) with values
// exact, edges included: with JSON columns through staging and the
// publish MERGE (PARSE_JSON), and without them by the publish by load.
// Before the fixes, the layer refused every load of it (the DATETIME
// column typed TIMESTAMP from the file; Parquet into JSON) and counted
// its publish MERGE as one BigQuery cannot prune.
func TestEveryTypeSyncsExactly(t *testing.T) {
	t.Parallel()
	for _, withJSON := range []bool{true, false} {
		t.Run(fmt.Sprintf("json=%v", withJSON), func(t *testing.T) {
			t.Parallel()
			r, proxy := newFidelityRig(t, bqfidelity.Options{})
			cols := everyTypeTable(r, "every", withJSON)
			s := r.openSpec(pgsource.TableSpec{Table: "every", IDColumn: "id", TimestampColumn: "created_at"}, "every", 2)
			var byLoad atomic.Int32
			setHook(s, func(point string) error {
				if point == "published_by_load" {
					byLoad.Add(1)
				}
				return nil
			})
			day := time.Date(2024, 4, 2, 0, 0, 0, 0, time.UTC)
			if got := r.syncAll(s, day); got != Finished {
				t.Fatalf("outcome %v", got)
			}
			st := proxy.Stats()
			if withJSON && (byLoad.Load() != 0 || st.DMLRun["MERGE"] != 1) || !withJSON && byLoad.Load() != 1 {
				t.Fatalf("published by load %d times, %d MERGE statements; want the table with JSON by one MERGE, the other by load",
					byLoad.Load(), st.DMLRun["MERGE"])
			}
			if st.UnprunableMerges != 0 {
				t.Fatalf("%d publish MERGE statements BigQuery could not prune (not ON FALSE)", st.UnprunableMerges)
			}
			r.compareEvery(cols)
		})
	}
}

// compareEvery compares every column of every row of "every" in BigQuery
// with PostgreSQL's.
func (r *rig) compareEvery(cols []everyType) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET intervalstyle = iso_8601"); err != nil {
		r.t.Fatal(err)
	}
	exprs := []string{"id::text", "to_char(created_at AT TIME ZONE 'UTC', " + pgUS + ")"}
	names := []string{"id", "created_at"}
	for _, c := range cols {
		exprs = append(exprs, "coalesce("+c.pg+", '<null>')")
		names = append(names, "`"+c.name+"`")
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM every ORDER BY id")
	if err != nil {
		r.t.Fatal(err)
	}
	var want [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			r.t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = v.(string)
			if i > 1 && (cols[i-2].name == "f4" || cols[i-2].name == "f8") && row[i] != bqvalue.Null {
				f, err := strconv.ParseFloat(row[i], 64)
				if err != nil {
					r.t.Fatal(err)
				}
				row[i] = strconv.FormatFloat(f, 'g', -1, 64)
			}
			if i > 1 && cols[i-2].name == "n2" && row[i] != bqvalue.Null {
				q, _ := new(big.Rat).SetString(row[i])
				row[i] = q.RatString()
			}
		}
		want = append(want, row)
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	var got [][]string
	for _, row := range r.bqRows("SELECT " + strings.Join(names, ", ") + " FROM " + r.wh.DestRef() + " ORDER BY id") {
		out := []string{bqText(r, row[0]), bqText(r, row[1])}
		for i, c := range cols {
			out = append(out, c.bq(r, row[i+2]))
		}
		got = append(got, out)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		r.t.Fatalf("values differ (-postgres +bigquery), columns %v:\n%s", names, diff)
	}
}
