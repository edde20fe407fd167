package loader

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"
)

// TestValuesArriveUnchanged reads a synced day back from BigQuery and
// compares every column of every row with PostgreSQL.
func TestValuesArriveUnchanged(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	first := time.Date(2024, 5, 10, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, first, 1, 120, true)
	// Edge values on top of the generated ones.
	r.exec(`INSERT INTO activity_logs (id, user_id, action, path, payload, ip, amount, score, ok, small, qty, uid, day, local_ts, doc, created_at)
VALUES (900001, -9223372036854775808, '', 'ünïcødé ✓ "q" \', '{"deep":{"a":[1,2,{"b":null}]},"s":"x\ny"}', '::1', -9999999999.99, 'NaN', false, -32768, 2147483647,
        '00000000-0000-0000-0000-000000000000', '0001-01-01', '9999-12-31 23:59:59.999999', '[]', '2024-05-10 23:59:59.999999+00'),
       (900002, 9223372036854775807, 'x', NULL, NULL, NULL, 0.01, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-05-10 00:00:00+00')`)
	s := r.open(40)
	if got := r.syncAll(s, first); got != Finished {
		t.Fatalf("outcome %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	want := map[int64][]any{}
	rows, err := r.pool.Query(ctx, `SELECT id, user_id, action, path, payload::text, host(ip), amount::text, score, ok, small, qty, uid::text, day, local_ts, doc::text, created_at FROM activity_logs`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, user int64
		var action string
		var path, payload, ip, amount, uid, doc *string
		var score float64
		var ok *bool
		var small, qty *int64
		var day, localTS *time.Time
		var created time.Time
		if err := rows.Scan(&id, &user, &action, &path, &payload, &ip, &amount, &score, &ok, &small, &qty, &uid, &day, &localTS, &doc, &created); err != nil {
			t.Fatal(err)
		}
		var d, lt any
		if day != nil {
			d = civil.DateOf(*day)
		}
		if localTS != nil {
			lt = civil.DateTimeOf(*localTS)
		}
		want[id] = []any{id, user, action, str(path), jsonValue(t, payload), str(ip), amount, fmt.Sprint(score), deref(ok), deref(small), deref(qty), str(uid), d, lt, jsonValue(t, doc), created.UTC()}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	got := map[int64][]any{}
	for _, row := range r.bqRows("SELECT * FROM " + r.wh.DestRef()) {
		conv := make([]any, len(row))
		for i, v := range row {
			conv[i] = v
		}
		// NUMERIC arrives as *big.Rat; PostgreSQL's text has the declared scale.
		if rat, ok := row[6].(*big.Rat); ok {
			s := rat.FloatString(2)
			conv[6] = &s
		} else {
			conv[6] = (*string)(nil)
		}
		conv[4] = jsonValue(t, asStr(row[4]))
		conv[14] = jsonValue(t, asStr(row[14]))
		conv[7] = fmt.Sprint(row[7])
		if ts, ok := row[15].(time.Time); ok {
			conv[15] = ts.UTC()
		}
		got[row[0].(int64)] = conv
	}
	if len(got) != len(want) || len(want) != 122 {
		t.Fatalf("BigQuery has %d rows, PostgreSQL %d (want 122)", len(got), len(want))
	}
	for id, w := range want {
		if diff := cmp.Diff(w, got[id]); diff != "" {
			t.Fatalf("row id=%d differs (-postgres +bigquery):\n%s", id, diff)
		}
	}
}

func (r *rig) exec(sql string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.pool.Exec(ctx, sql); err != nil {
		r.t.Fatalf("exec: %v", err)
	}
}

func str(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func asStr(v bigquery.Value) *string {
	if s, ok := v.(string); ok {
		return &s
	}
	return nil
}

func jsonValue(t testing.TB, s *string) any {
	t.Helper()
	if s == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(*s), &v); err != nil {
		t.Fatalf("bad JSON %q: %v", *s, err)
	}
	return v
}
