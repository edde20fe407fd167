package loader

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/pgsource"
)

// One-dimensional arrays arrive as REPEATED columns with every element in
// order; a NULL array arrives as an empty one.
func TestArraysRoundTrip(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.exec(`CREATE TYPE colour AS ENUM ('red', 'green');
CREATE TABLE arr (id bigint PRIMARY KEY, created_at timestamptz NOT NULL,
  ints bigint[], small smallint[], texts text[], amounts numeric(10,2)[], ids uuid[], times timestamptz[], docs jsonb[], colours colour[], flags boolean[]);
INSERT INTO arr VALUES
 (1, '2024-06-05 01:00:00+00', '{1,-2,9223372036854775807}', '{1,2}', '{"a","ünï ✓","",","}', '{1.50,-0.01}',
  '{00000000-0000-0000-0000-000000000001}', '{"2024-01-01 00:00:00.000001+00"}', ARRAY['{"k":[1,{"d":null}]}'::jsonb], '{red,green}', '{true,false}'),
 (2, '2024-06-05 02:00:00+00', '{}', NULL, '{}', NULL, NULL, NULL, NULL, '{}', NULL),
 (3, '2024-06-05 03:00:00+00', NULL, '{7}', NULL, '{0}', '{}', '{}', '{}', NULL, '{true}')`)
	s := r.openSpec(pgsource.TableSpec{Table: "arr", IDColumn: "id", TimestampColumn: "created_at"}, "arr", 2)
	if got := r.syncAll(s, time.Date(2024, 6, 5, 0, 0, 0, 0, time.UTC)); got != Finished {
		t.Fatalf("outcome %v", got)
	}
	got := r.bqRows(fmt.Sprintf("SELECT id, ints, small, texts, amounts, ids, times, colours, flags FROM %s ORDER BY id", r.wh.DestRef()))
	ts := time.Date(2024, 1, 1, 0, 0, 0, 1000, time.UTC)
	want := [][]bigquery.Value{
		{int64(1), []bigquery.Value{int64(1), int64(-2), int64(9223372036854775807)}, []bigquery.Value{int64(1), int64(2)},
			[]bigquery.Value{"a", "ünï ✓", "", ","}, []bigquery.Value{"1.50", "-0.01"}, []bigquery.Value{"00000000-0000-0000-0000-000000000001"},
			[]bigquery.Value{ts}, []bigquery.Value{"red", "green"}, []bigquery.Value{true, false}},
		{int64(2), []bigquery.Value{}, []bigquery.Value{}, []bigquery.Value{}, []bigquery.Value{}, []bigquery.Value{}, []bigquery.Value{}, []bigquery.Value{}, []bigquery.Value{}},
		{int64(3), []bigquery.Value{}, []bigquery.Value{int64(7)}, []bigquery.Value{}, []bigquery.Value{"0.00"}, []bigquery.Value{}, []bigquery.Value{}, []bigquery.Value{}, []bigquery.Value{true}},
	}
	norm := func(rows [][]bigquery.Value) [][]bigquery.Value {
		for _, row := range rows {
			for i, v := range row {
				switch a := v.(type) {
				case nil:
					row[i] = []bigquery.Value{}
				case []bigquery.Value:
					if len(a) == 0 {
						row[i] = []bigquery.Value{}
					}
					for j, e := range a {
						switch x := e.(type) {
						case time.Time:
							a[j] = x.UTC()
						case *big.Rat: // NUMERIC
							a[j] = x.FloatString(2)
						}
					}
				}
			}
		}
		return rows
	}
	if diff := cmp.Diff(norm(want), norm(got)); diff != "" {
		t.Fatalf("arrays differ (-want +got):\n%s", diff)
	}
	docs := r.bqRows(fmt.Sprintf("SELECT ARRAY_LENGTH(docs) FROM %s WHERE id = 1", r.wh.DestRef()))
	if len(docs) != 1 || docs[0][0] != int64(1) {
		t.Fatalf("jsonb[] length = %v", docs)
	}
}

// BigQuery arrays hold no NULL element and have one dimension: such values
// stop the date, naming the column and the row.
func TestArraysBigQueryCannotHold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ value, want string }{
		{"'{1,NULL,3}'", "a NULL array element"},
		{"'{{1,2},{3,4}}'", "a 2-dimensional array"},
	} {
		r := newRig(t)
		r.exec(`CREATE TABLE bad (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, xs int[]);
INSERT INTO bad VALUES (4, '2024-06-06 01:00:00+00', ` + tc.value + `)`)
		s := r.openSpec(pgsource.TableSpec{Table: "bad", IDColumn: "id", TimestampColumn: "created_at"}, "bad", 5)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := s.Sync(ctx, time.Date(2024, 6, 6, 0, 0, 0, 0, time.UTC), time.Now().Add(time.Hour))
		cancel()
		if !errors.Is(err, pgsource.ErrUnsupported) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `column "xs"`) || !strings.Contains(err.Error(), "id 4") {
			t.Fatalf("%s: error %v", tc.value, err)
		}
	}
}
