package pgsource_test

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/testenv"
)

// BigQuery's TIMESTAMP range in microseconds since 1970.
const (
	minMicros = -62135596800000000
	maxMicros = 253402300799999999
)

// decimalText formats NUMERIC's 16-byte value*10^9 with scale fraction
// digits, the way PostgreSQL prints a numeric(p,scale); ok is false when
// digits beyond scale are not zero.
func decimalText(b []byte, scale int) (s string, ok bool) {
	n := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	div := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(schema.NumericScale-scale)), nil)
	q, r := new(big.Int).QuoRem(n, div, new(big.Int))
	neg := q.Sign() < 0
	digits := new(big.Int).Abs(q).String()
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	s = digits
	if scale > 0 {
		s = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s, r.Sign() == 0
}

// microsText formats microseconds since 1970 as PostgreSQL prints a
// timestamp in UTC (trailing fraction zeros dropped).
func microsText(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.999999")
}

func randomDecimal(rng *rand.Rand, intDigits, scale int) string {
	var b strings.Builder
	if rng.IntN(2) == 0 {
		b.WriteByte('-')
	}
	n := 1 + rng.IntN(intDigits)
	for i := range n {
		d := rng.IntN(10)
		if i == 0 && n > 1 && d == 0 {
			d = 1
		}
		b.WriteByte(byte('0' + d))
	}
	if scale > 0 {
		b.WriteByte('.')
		for range 1 + rng.IntN(scale) {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
	}
	return b.String()
}

// TestRandomValuesMatchPostgresText decodes seeded random numerics,
// timestamps, intervals and arrays of them through ReadChunk and compares
// each with PostgreSQL's own text output of the stored value.
func TestRandomValuesMatchPostgresText(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	testenv.Exec(t, pool, `CREATE TABLE r (
  id bigint PRIMARY KEY, created_at timestamptz NOT NULL,
  n numeric(38,9), n2 numeric(12,2), ts timestamp, iv interval,
  ai bigint[], an numeric(10,2)[], ats timestamptz[])`)

	const rows = 400
	rng := rand.New(rand.NewPCG(14, 11))
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	randomTS := func() string { return microsText(minMicros + rng.Int64N(maxMicros-minMicros+1)) }
	batch := &pgx.Batch{}
	for i := range rows {
		n, n2 := randomDecimal(rng, 29, 9), randomDecimal(rng, 10, 2)
		iv := fmt.Sprintf("%d months %d days %d microseconds", rng.IntN(24001)-12000, rng.IntN(2001)-1000, rng.Int64N(1e12)-5e11)
		var ai, an, ats []string
		for range rng.IntN(4) {
			ai = append(ai, fmt.Sprint(rng.Int64()>>rng.IntN(64)*int64(1-2*rng.IntN(2))))
			an = append(an, randomDecimal(rng, 8, 2))
			ats = append(ats, `"`+randomTS()+`+00"`)
		}
		arr := func(s []string) string { return "{" + strings.Join(s, ",") + "}" }
		var nv, n2v, tsv, ivv, aiv any = n, n2, randomTS(), iv, arr(ai)
		if i%17 == 0 { // NULLs, and a NULL array that arrives as []
			nv, n2v, tsv, ivv, aiv = nil, nil, nil, nil, nil
		}
		batch.Queue(`INSERT INTO r VALUES ($1, $2, $3::numeric, $4::numeric, $5::timestamp, $6::interval, $7::bigint[], $8::numeric[], $9::timestamptz[])`,
			i, day.Add(time.Duration(i)*time.Second), nv, n2v, tsv, ivv, aiv, arr(an), arr(ats))
	}
	if err := pool.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatal(err)
	}

	src, err := pgsource.Open(ctx, pgsource.Config{DSN: dsn}, pgsource.TableSpec{Table: "r", IDColumn: "id", TimestampColumn: "created_at"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var b schema.Batch
	if err := src.ReadChunk(ctx, day, day.AddDate(0, 0, 1), nil, rows+1, &b); err != nil {
		t.Fatal(err)
	}
	if b.Rows != rows {
		t.Fatalf("read %d rows, want %d", b.Rows, rows)
	}

	// PostgreSQL's own text, in UTC and its default interval style; the
	// interval pgbq delivers (ISO 8601) is parsed back by PostgreSQL.
	conn, err := pgx.Connect(ctx, dsn+" timezone=UTC")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ivs []*string
	for i := range rows {
		if b.Vectors[5].Valid[i] {
			s := string(b.Vectors[5].BytesAt(i))
			ivs = append(ivs, &s)
		} else {
			ivs = append(ivs, nil)
		}
	}
	pgRows, err := conn.Query(ctx, `SELECT r.n::text, r.n2::text, r.ts::text, r.iv::text, d.iv::interval::text, r.ai::text, r.an::text, r.ats::text
FROM r JOIN unnest($1::text[]) WITH ORDINALITY AS d(iv, k) ON d.k = r.id + 1 ORDER BY r.id`, ivs)
	if err != nil {
		t.Fatal(err)
	}
	defer pgRows.Close()
	i := 0
	for pgRows.Next() {
		var n, n2, ts, iv, ivBack, ai *string
		var an, ats string
		if err := pgRows.Scan(&n, &n2, &ts, &iv, &ivBack, &ai, &an, &ats); err != nil {
			t.Fatal(err)
		}
		v := b.Vectors
		check := func(col string, want *string, valid bool, got func() string) {
			t.Helper()
			switch {
			case want == nil && valid:
				t.Errorf("row %d %s: PostgreSQL has NULL, pgbq %q", i, col, got())
			case want != nil && !valid:
				t.Errorf("row %d %s: PostgreSQL has %q, pgbq NULL", i, col, *want)
			case want != nil && got() != *want:
				t.Errorf("row %d %s: PostgreSQL %q, pgbq %q", i, col, *want, got())
			}
		}
		dec := func(vec *schema.Vector, k, scale int) string {
			s, ok := decimalText(vec.BytesAt(k), scale)
			if !ok {
				return s + " (digits beyond the scale)"
			}
			return s
		}
		check("numeric(38,9)", n, v[2].Valid[i], func() string { return dec(&v[2], i, 9) })
		check("numeric(12,2)", n2, v[3].Valid[i], func() string { return dec(&v[3], i, 2) })
		check("timestamp", ts, v[4].Valid[i], func() string { return microsText(v[4].Ints[i]) })
		check("interval (parsed back)", iv, v[5].Valid[i], func() string { return *ivBack })
		list := func(vec *schema.Vector, f func(e *schema.Vector, k int) string) string {
			lo, hi := vec.ElemRange(i)
			var s []string
			for k := lo; k < hi; k++ {
				s = append(s, f(vec.Elem, k))
			}
			return "{" + strings.Join(s, ",") + "}"
		}
		empty := "{}"
		if ai == nil {
			ai = &empty // a NULL array arrives as []
		}
		check("bigint[]", ai, v[6].Valid[i], func() string {
			return list(&v[6], func(e *schema.Vector, k int) string { return fmt.Sprint(e.Ints[k]) })
		})
		check("numeric(10,2)[]", &an, v[7].Valid[i], func() string {
			return list(&v[7], func(e *schema.Vector, k int) string { return dec(e, k, 2) })
		})
		check("timestamptz[]", &ats, v[8].Valid[i], func() string {
			return list(&v[8], func(e *schema.Vector, k int) string { return `"` + microsText(e.Ints[k]) + `+00"` })
		})
		i++
	}
	if err := pgRows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != rows {
		t.Fatalf("compared %d rows, want %d", i, rows)
	}
}
