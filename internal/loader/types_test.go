package loader

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/retry"
)

const typesDDL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE DOMAIN short_text AS varchar(20);
CREATE TABLE typed (
  id bigint PRIMARY KEY, created_at timestamptz NOT NULL,
  t time, ttz timetz, iv interval, m mood, mac macaddr, mac8 macaddr8, c1 "char", c5 char(5),
  pi positive_int, st short_text, net cidr, big numeric, n38 numeric(38,9), b bytea, s text, f4 real
);
INSERT INTO typed VALUES
 (1, '2024-06-01 00:00:00+00', '00:00:00', '00:00:00+00', 'P0D', 'sad', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', 'a', 'ab',
  1, '', '10.0.0.0/8', 1234567890123456789012345678901234567890.0123456789, 99999999999999999999999999999.999999999, '\x00ff', 'ünïcødé ✓', 3.4028235e38),
 (2, '2024-06-01 12:00:00.000001+00', '23:59:59.999999', '12:34:56.789+05:30', '1 year 2 months 3 days 04:05:06.789', 'happy', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00', 'z', 'abcde',
  2147483647, 'twenty characters!!!', '2001:db8::/32', 'NaN', -99999999999999999999999999999.999999999, '\x', '', 0.1),
 (3, '2024-06-01 23:59:59.999999+00', '12:00:00.5', '23:59:59-12', '-1 days -00:00:01', NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, 'Infinity', 0.000000001, NULL, NULL, '-Infinity'),
 (4, '2024-06-01 06:00:00+00', NULL, NULL, NULL, 'ok', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-Infinity', NULL, NULL, NULL, 'NaN');`

// Every type of the contract arrives as docs/types.md's table says, edges
// included: read back from BigQuery and compared with PostgreSQL's own
// rendering of each value.
func TestTypeContractRoundTrip(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.exec(typesDDL)
	s := r.openSpec(pgsource.TableSpec{Table: "typed", IDColumn: "id", TimestampColumn: "created_at"}, "typed", 3)
	day := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	if got := r.syncAll(s, day); got != Finished {
		t.Fatalf("outcome %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET intervalstyle = iso_8601"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT id, (extract(epoch FROM t) * 1000000)::bigint, ttz::text, iv::text, m::text, mac::text, mac8::text,
  c1::text, c5, pi::bigint, st::text, net::text, big::text, n38::text, b, s, f4::float8::text FROM typed ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if f, ok := v.(int32); ok {
				vals[i] = int64(f)
			}
		}
		want = append(want, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var got [][]any
	for _, row := range r.bqRows("SELECT id, t, ttz, iv, m, mac, mac8, c1, c5, pi, st, net, big, n38, b, s, f4 FROM " + r.wh.DestRef() + " ORDER BY id") {
		vals := make([]any, len(row))
		for i, v := range row {
			vals[i] = v
		}
		if tm, ok := row[1].(civil.Time); ok {
			vals[1] = int64(tm.Hour)*3_600_000_000 + int64(tm.Minute)*60_000_000 + int64(tm.Second)*1_000_000 + int64(tm.Nanosecond/1000)
		}
		if rat, ok := row[13].(interface{ FloatString(int) string }); ok {
			vals[13] = rat.FloatString(9)
		}
		// real: the float32 value exactly, as PostgreSQL widens it.
		if f, ok := row[16].(float64); ok {
			vals[16] = strconv.FormatFloat(f, 'g', -1, 64)
			switch {
			case math.IsNaN(f):
				vals[16] = "NaN"
			case math.IsInf(f, 1):
				vals[16] = "Infinity"
			case math.IsInf(f, -1):
				vals[16] = "-Infinity"
			}
		}
		got = append(got, vals)
	}
	// numeric(38,9) text from PostgreSQL carries its declared scale.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("values differ (-postgres +bigquery):\n%s", diff)
	}
}

// Values BigQuery cannot hold stop the date with an error naming the
// column, the row and the value; the error is permanent (not retried).
func TestUnrepresentableValuesFailLoudly(t *testing.T) {
	t.Parallel()
	cases := []struct{ ddl, value, want string }{
		{"ts timestamptz", "'infinity'", "timestamp infinity"},
		{"ts timestamp", "'-infinity'", "timestamp -infinity"},
		{"d date", "'infinity'", "date infinity is outside"},
		{"d date", "'10000-01-01'", "date 10000-01-01 is outside"},
		{"ts timestamptz", "'0001-01-01 00:00:00+00'::timestamptz - interval '1 day'", "outside years 1..9999"},
		{"n numeric(10,2)", "'NaN'", `numeric "NaN"`},
		{"t time", "'24:00:00'", "time 24:00:00"},
		// BigQuery's JSON holds int64, uint64 or float64 numbers; PARSE_JSON
		// ('exact') would fail the whole publish on this one.
		{"j jsonb", `'{"n": 123456789012345678901234567890}'`, "JSON number 123456789012345678901234567890"},
		{"j json", `'[1, 0.10000000000000000001]'`, "JSON number 0.10000000000000000001"},
		{"j jsonb[]", `ARRAY['{"n": 1e400}'::jsonb]`, "JSON number 1"},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			col := strings.Fields(tc.ddl)[0]
			r.exec(`CREATE TABLE edge (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, ` + tc.ddl + `);
INSERT INTO edge VALUES (1, '2024-06-02 10:00:00+00', NULL), (7, '2024-06-02 11:00:00+00', ` + tc.value + `)`)
			s := r.openSpec(pgsource.TableSpec{Table: "edge", IDColumn: "id", TimestampColumn: "created_at"}, "edge", 10)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := s.Sync(ctx, time.Date(2024, 6, 2, 0, 0, 0, 0, time.UTC), time.Now().Add(time.Hour))
			if err == nil || !errors.Is(err, pgsource.ErrUnsupported) || retry.Transient(err) {
				t.Fatalf("error = %v; want a permanent ErrUnsupported", err)
			}
			for _, part := range []string{`column "` + col + `"`, "id 7", tc.want} {
				if !strings.Contains(err.Error(), part) {
					t.Fatalf("error %q does not say %q", err, part)
				}
			}
		})
	}
}
