package pgsource

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/schema"
)

func be16(v int16) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func mustColumn(t *testing.T, typeName string, oid uint32, typmod int32) column {
	t.Helper()
	c, err := mapColumn("c", typeName, oid, typmod, false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// numericTypmod is the typmod of numeric(p,s).
func numericTypmod(p, s int32) int32 { return p<<16 | s + 4 }

// decoded is one value as the vector holds it.
type decoded struct {
	Valid bool
	Int   int64
	Float float64
	Bool  bool
	Bytes string
}

func decodeOne(t *testing.T, c column, raw []byte) (decoded, error) {
	t.Helper()
	var v schema.Vector
	if err := appendValue(&v, &c, raw); err != nil {
		return decoded{}, err
	}
	if len(v.Valid) != 1 {
		t.Fatalf("%d validity entries for one value", len(v.Valid))
	}
	d := decoded{Valid: v.Valid[0]}
	switch {
	case len(v.Ints) == 1:
		d.Int = v.Ints[0]
	case len(v.Floats) == 1:
		d.Float = v.Floats[0]
	case len(v.Bools) == 1:
		d.Bool = v.Bools[0]
	case len(v.Offsets) == 2:
		d.Bytes = string(v.BytesAt(0))
	default:
		t.Fatalf("no value appended: %+v", v)
	}
	return d, nil
}

// neg16 is -v as NUMERIC's 16-byte two's complement (v > 0).
func neg16(v uint64) string { return dec16(math.MaxUint64, -v) }

// dec16 is value*10^9 as NUMERIC's 16-byte two's complement.
func dec16(hi uint64, lo uint64) string {
	b := binary.BigEndian.AppendUint64(nil, hi)
	return string(binary.BigEndian.AppendUint64(b, lo))
}

func TestDecodeBytes(t *testing.T) {
	t.Parallel()
	const day = 86_400_000_000
	float4 := func(f float32) []byte { return binary.BigEndian.AppendUint32(nil, math.Float32bits(f)) }
	float8 := func(f float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)) }
	for _, tc := range []struct {
		name     string
		typ      string
		oid      uint32
		typmod   int32
		raw      []byte
		want     decoded
		errValue bool   // the value cannot be represented (errValue)
		err      string // any other error containing this
	}{
		{name: "int2 min", typ: "smallint", oid: oidInt2, raw: be16(math.MinInt16), want: decoded{Valid: true, Int: math.MinInt16}},
		{name: "int2 -1", typ: "smallint", oid: oidInt2, raw: []byte{0xff, 0xff}, want: decoded{Valid: true, Int: -1}},
		{name: "int4 max", typ: "integer", oid: oidInt4, raw: be32(math.MaxInt32), want: decoded{Valid: true, Int: math.MaxInt32}},
		{name: "int4 min", typ: "integer", oid: oidInt4, raw: []byte{0x80, 0, 0, 0}, want: decoded{Valid: true, Int: math.MinInt32}},
		{name: "int8 max", typ: "bigint", oid: oidInt8, raw: be64(math.MaxInt64), want: decoded{Valid: true, Int: math.MaxInt64}},
		{name: "int8 min", typ: "bigint", oid: oidInt8, raw: be64(math.MinInt64), want: decoded{Valid: true, Int: math.MinInt64}},
		{name: "int8 short", typ: "bigint", oid: oidInt8, raw: []byte{1, 2, 3}, err: "integer of 3 bytes"},
		{name: "NULL int", typ: "bigint", oid: oidInt8, raw: nil, want: decoded{}},
		{name: "float4", typ: "real", oid: oidFloat4, raw: float4(1.5), want: decoded{Valid: true, Float: 1.5}},
		{name: "float4 -inf", typ: "real", oid: oidFloat4, raw: float4(float32(math.Inf(-1))), want: decoded{Valid: true, Float: math.Inf(-1)}},
		{name: "float8 smallest", typ: "double precision", oid: oidFloat8, raw: float8(math.SmallestNonzeroFloat64), want: decoded{Valid: true, Float: math.SmallestNonzeroFloat64}},
		{name: "float8 -0", typ: "double precision", oid: oidFloat8, raw: []byte{0x80, 0, 0, 0, 0, 0, 0, 0}, want: decoded{Valid: true, Float: math.Copysign(0, -1)}},
		{name: "float of 2 bytes", typ: "real", oid: oidFloat4, raw: []byte{1, 2}, err: "float of 2 bytes"},
		{name: "NULL float", typ: "real", oid: oidFloat4, raw: nil, want: decoded{}},
		{name: "bool true", typ: "boolean", oid: oidBool, raw: []byte{1}, want: decoded{Valid: true, Bool: true}},
		{name: "bool false", typ: "boolean", oid: oidBool, raw: []byte{0}, want: decoded{Valid: true}},
		{name: "NULL bool", typ: "boolean", oid: oidBool, raw: nil, want: decoded{}},
		{name: "text", typ: "text", oid: oidText, raw: []byte("ünï\x00?"), want: decoded{Valid: true, Bytes: "ünï\x00?"}},
		{name: "empty text", typ: "text", oid: oidText, raw: []byte{}, want: decoded{Valid: true}},
		{name: "NULL text", typ: "text", oid: oidText, raw: nil, want: decoded{}},
		{name: "bytea", typ: "bytea", oid: oidBytea, raw: []byte{0, 0xff, 0x80}, want: decoded{Valid: true, Bytes: "\x00\xff\x80"}},
		{name: "json as sent", typ: "json", oid: oidJSON, raw: []byte(`{"a": 1}`), want: decoded{Valid: true, Bytes: `{"a": 1}`}},
		{name: "jsonb version 1", typ: "jsonb", oid: oidJSONB, raw: []byte("\x01{\"a\": 1}"), want: decoded{Valid: true, Bytes: `{"a": 1}`}},
		{name: "jsonb version 2", typ: "jsonb", oid: oidJSONB, raw: []byte("\x02{}"), err: "unknown jsonb binary version"},
		{name: "jsonb empty", typ: "jsonb", oid: oidJSONB, raw: []byte{}, err: "unknown jsonb binary version"},
		{name: "date 2000-01-01", typ: "date", oid: oidDate, raw: be32(0), want: decoded{Valid: true, Int: pgEpochDays}},
		{name: "date 1970-01-01", typ: "date", oid: oidDate, raw: be32(-pgEpochDays), want: decoded{Valid: true, Int: 0}},
		{name: "date 0001-01-01", typ: "date", oid: oidDate, raw: be32(minDays - pgEpochDays), want: decoded{Valid: true, Int: minDays}},
		{name: "date 9999-12-31", typ: "date", oid: oidDate, raw: be32(maxDays - pgEpochDays), want: decoded{Valid: true, Int: maxDays}},
		{name: "date 0001-12-31 BC", typ: "date", oid: oidDate, raw: be32(minDays - pgEpochDays - 1), errValue: true, err: "0000-12-31"},
		{name: "date 10000-01-01", typ: "date", oid: oidDate, raw: be32(maxDays - pgEpochDays + 1), errValue: true},
		{name: "date infinity", typ: "date", oid: oidDate, raw: be32(math.MaxInt32), errValue: true, err: "date infinity"},
		{name: "date -infinity", typ: "date", oid: oidDate, raw: be32(math.MinInt32), errValue: true, err: "date -infinity"},
		{name: "date of 8 bytes", typ: "date", oid: oidDate, raw: be64(0), err: "date of 8 bytes"},
		{name: "timestamptz 2000-01-01", typ: "timestamp with time zone", oid: oidTimestamptz, raw: be64(0), want: decoded{Valid: true, Int: pgEpochMicros}},
		{name: "timestamptz 1969-12-31 23:59:59.999999", typ: "timestamp with time zone", oid: oidTimestamptz, raw: be64(-pgEpochMicros - 1), want: decoded{Valid: true, Int: -1}},
		{name: "timestamptz 0001-01-01", typ: "timestamp with time zone", oid: oidTimestamptz, raw: be64(minMicros - pgEpochMicros), want: decoded{Valid: true, Int: minMicros}},
		{name: "timestamptz last microsecond of 9999", typ: "timestamp with time zone", oid: oidTimestamptz, raw: be64(maxMicros - pgEpochMicros), want: decoded{Valid: true, Int: maxMicros}},
		{name: "timestamptz 10000-01-01", typ: "timestamp with time zone", oid: oidTimestamptz, raw: be64(maxMicros - pgEpochMicros + 1), errValue: true, err: "outside years 1..9999"},
		{name: "timestamptz before year 1", typ: "timestamp with time zone", oid: oidTimestamptz, raw: be64(minMicros - pgEpochMicros - 1), errValue: true},
		{name: "timestamptz infinity", typ: "timestamp with time zone", oid: oidTimestamptz, raw: be64(math.MaxInt64), errValue: true, err: "timestamp infinity"},
		{name: "timestamptz -infinity", typ: "timestamp with time zone", oid: oidTimestamptz, raw: be64(math.MinInt64), errValue: true, err: "timestamp -infinity"},
		{name: "timestamp of 4 bytes", typ: "timestamp without time zone", oid: oidTimestamp, raw: be32(0), err: "timestamp of 4 bytes"},
		{name: "timestamp wall clock", typ: "timestamp without time zone", oid: oidTimestamp, raw: be64(day + 1), want: decoded{Valid: true, Int: pgEpochMicros + day + 1}},
		{name: "time midnight", typ: "time without time zone", oid: oidTime, raw: be64(0), want: decoded{Valid: true, Int: 0}},
		{name: "time last microsecond", typ: "time without time zone", oid: oidTime, raw: be64(day - 1), want: decoded{Valid: true, Int: day - 1}},
		{name: "time 24:00", typ: "time without time zone", oid: oidTime, raw: be64(day), errValue: true, err: "24:00:00"},
		{name: "time of 4 bytes", typ: "time without time zone", oid: oidTime, raw: be32(0), err: "time of 4 bytes"},
		// numeric(p,s) with s <= 9 arrives as text and becomes value*10^9.
		{name: "numeric 1.5", typ: "numeric(12,2)", oid: oidNumeric, typmod: numericTypmod(12, 2), raw: []byte("1.5"), want: decoded{Valid: true, Bytes: dec16(0, 1_500_000_000)}},
		{name: "numeric +7", typ: "numeric(12,2)", oid: oidNumeric, typmod: numericTypmod(12, 2), raw: []byte("+7"), want: decoded{Valid: true, Bytes: dec16(0, 7_000_000_000)}},
		{name: "numeric 0", typ: "numeric(12,2)", oid: oidNumeric, typmod: numericTypmod(12, 2), raw: []byte("0.00"), want: decoded{Valid: true, Bytes: dec16(0, 0)}},
		{name: "numeric -0.01", typ: "numeric(12,2)", oid: oidNumeric, typmod: numericTypmod(12, 2), raw: []byte("-0.01"), want: decoded{Valid: true, Bytes: neg16(10_000_000)}},
		{name: "numeric smallest", typ: "numeric(38,9)", oid: oidNumeric, typmod: numericTypmod(38, 9), raw: []byte("-0.000000001"), want: decoded{Valid: true, Bytes: neg16(1)}},
		// 10^38-1 = 0x4b3b4ca85a86c47a098a223fffffffff
		{name: "numeric largest", typ: "numeric(38,9)", oid: oidNumeric, typmod: numericTypmod(38, 9), raw: []byte("99999999999999999999999999999.999999999"), want: decoded{Valid: true, Bytes: dec16(0x4b3b4ca85a86c47a, 0x098a223fffffffff)}},
		{name: "numeric 10 fraction digits", typ: "numeric(38,9)", oid: oidNumeric, typmod: numericTypmod(38, 9), raw: []byte("1.0000000001"), errValue: true},
		{name: "numeric NaN", typ: "numeric(12,2)", oid: oidNumeric, typmod: numericTypmod(12, 2), raw: []byte("NaN"), errValue: true, err: `"NaN"`},
		{name: "numeric Infinity", typ: "numeric(12,2)", oid: oidNumeric, typmod: numericTypmod(12, 2), raw: []byte("-Infinity"), errValue: true},
		{name: "numeric empty", typ: "numeric(12,2)", oid: oidNumeric, typmod: numericTypmod(12, 2), raw: []byte("-"), errValue: true},
		{name: "numeric exceeds NUMERIC", typ: "numeric(38,9)", oid: oidNumeric, typmod: numericTypmod(38, 9), raw: []byte("999999999999999999999999999999999999999"), errValue: true, err: "exceeds NUMERIC"},
		{name: "NULL numeric", typ: "numeric(12,2)", oid: oidNumeric, typmod: numericTypmod(12, 2), raw: nil, want: decoded{}},
		// Unconstrained numeric and the text-format types travel as their text.
		{name: "numeric unconstrained", typ: "numeric", oid: oidNumeric, typmod: -1, raw: []byte("1e-400"), want: decoded{Valid: true, Bytes: "1e-400"}},
		{name: "interval text", typ: "interval", oid: oidInterval, raw: []byte("P1Y2M3DT4H5M6.000007S"), want: decoded{Valid: true, Bytes: "P1Y2M3DT4H5M6.000007S"}},
		{name: "uuid text", typ: "uuid", oid: oidUUID, raw: []byte("00000000-0000-0000-0000-000000000000"), want: decoded{Valid: true, Bytes: "00000000-0000-0000-0000-000000000000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustColumn(t, tc.typ, tc.oid, tc.typmod)
			got, err := decodeOne(t, c, tc.raw)
			if tc.err != "" || tc.errValue {
				if err == nil {
					t.Fatalf("decoded %+v, want an error", got)
				}
				if tc.errValue != errors.Is(err, errValue) {
					t.Errorf("error %q: errValue = %v, want %v", err, errors.Is(err, errValue), tc.errValue)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %q does not mention %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Float != tc.want.Float || math.Signbit(got.Float) != math.Signbit(tc.want.Float) {
				t.Errorf("float sign: got %v, want %v", got.Float, tc.want.Float)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// arrayBytes builds PostgreSQL's binary array: ndim, has-null flag,
// element oid, then per dimension (length, lower bound), then each element
// as a length (-1 for NULL) and its bytes.
func arrayBytes(elemOID uint32, dims []int32, elems ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(dims)))
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, elemOID)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
		b = binary.BigEndian.AppendUint32(b, 1)
	}
	for _, e := range elems {
		if e == nil {
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

func TestDecodeArrayBytes(t *testing.T) {
	t.Parallel()
	intArray, err := mapRaw(rawColumn{name: "a", typeName: "bigint[]", oid: 1016, isArray: true, elemOID: oidInt8, typmod: -1})
	if err != nil {
		t.Fatal(err)
	}
	textArray, err := mapRaw(rawColumn{name: "a", typeName: "numeric(10,2)[]", oid: 1231, isArray: true, elemOID: oidNumeric, typmod: numericTypmod(10, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if !textArray.elemAsText {
		t.Fatal("numeric elements should be selected as text")
	}
	for _, tc := range []struct {
		name string
		col  column
		raws [][]byte // one row each
		want []any    // per row: []int64 or []string
		err  string
	}{
		{name: "ints", col: intArray, raws: [][]byte{arrayBytes(oidInt8, []int32{3}, be64(1), be64(-2), be64(math.MaxInt64))},
			want: []any{[]int64{1, -2, math.MaxInt64}}},
		{name: "empty, NULL and one", col: intArray, raws: [][]byte{arrayBytes(oidInt8, nil), nil, arrayBytes(oidInt8, []int32{1}, be64(7))},
			want: []any{[]int64{}, []int64{}, []int64{7}}},
		{name: "numeric elements as text", col: textArray, raws: [][]byte{arrayBytes(oidText, []int32{2}, []byte("1.25"), []byte("-3"))},
			want: []any{[]string{dec16(0, 1_250_000_000), neg16(3_000_000_000)}}},
		{name: "NULL element", col: intArray, raws: [][]byte{arrayBytes(oidInt8, []int32{2}, be64(1), nil)}, err: "NULL array element"},
		{name: "two dimensions", col: intArray, raws: [][]byte{arrayBytes(oidInt8, []int32{1, 1}, be64(1))}, err: "2-dimensional"},
		{name: "short header", col: intArray, raws: [][]byte{make([]byte, 11)}, err: "array of 11 bytes"},
		{name: "truncated dimension", col: intArray, raws: [][]byte{arrayBytes(oidInt8, nil)[:12:12]}, want: []any{[]int64{}}},
		{name: "truncated element", col: intArray, raws: [][]byte{arrayBytes(oidInt8, []int32{1}, be64(1))[:25]}, err: "truncated array element"},
		{name: "missing element", col: intArray, raws: [][]byte{arrayBytes(oidInt8, []int32{2}, be64(1))}, err: "truncated array"},
		{name: "bad element", col: intArray, raws: [][]byte{arrayBytes(oidInt8, []int32{1}, []byte{1, 2, 3})}, err: "integer of 3 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v schema.Vector
			var err error
			for _, raw := range tc.raws {
				if err = appendValue(&v, &tc.col, raw); err != nil {
					break
				}
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []any
			for i := range tc.raws {
				lo, hi := v.ElemRange(i)
				if _, ok := tc.want[0].([]int64); ok {
					got = append(got, append([]int64{}, v.Elem.Ints[lo:hi]...))
					continue
				}
				s := []string{}
				for k := lo; k < hi; k++ {
					s = append(s, string(v.Elem.BytesAt(k)))
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for i, ok := range v.Valid {
				if !ok {
					t.Errorf("row %d: an array is never NULL in BigQuery", i)
				}
			}
		})
	}
}
