package parquetenc

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/pgbq/pgbq/internal/schema"
)

func sampleTable() schema.Table {
	return schema.Table{Columns: []schema.Column{
		{Name: "id", Type: schema.Int64}, {Name: "user_id", Type: schema.Int64}, {Name: "action", Type: schema.String},
		{Name: "payload", Type: schema.JSON}, {Name: "amount", Type: schema.Numeric}, {Name: "score", Type: schema.Float64},
		{Name: "ok", Type: schema.Bool}, {Name: "day", Type: schema.Date}, {Name: "created_at", Type: schema.Timestamp},
	}, IDIndex: 0, TimestampIndex: 8}
}

func sampleBatch(t schema.Table, n int) *schema.Batch {
	b := &schema.Batch{}
	b.Reset(len(t.Columns))
	dec := make([]byte, 16)
	for i := 0; i < n; i++ {
		null := i%13 == 0
		for c, col := range t.Columns {
			v := &b.Vectors[c]
			v.Valid = append(v.Valid, !(null && c > 0))
			switch col.Type {
			case schema.Int64, schema.Date, schema.Timestamp:
				v.Ints = append(v.Ints, int64(i))
			case schema.Float64:
				v.Floats = append(v.Floats, float64(i)/3)
			case schema.Bool:
				v.Bools = append(v.Bools, i%2 == 0)
			case schema.Numeric:
				dec[15] = byte(i)
				v.AppendBytes(dec)
			default:
				v.AppendBytes([]byte(fmt.Sprintf(`{"n":%d}`, i)))
			}
		}
		b.Rows++
	}
	return b
}

// The file keeps the table's column order and names, and its values.
func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	tbl := sampleTable()
	enc, err := New(tbl)
	if err != nil {
		t.Fatal(err)
	}
	// Encode a larger batch first: the reused writer must not leak it
	// into the next file.
	var buf bytes.Buffer
	if err := enc.Encode(&buf, sampleBatch(tbl, 70000)); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	b := sampleBatch(tbl, 5000)
	if err := enc.Encode(&buf, b); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != 5000 {
		t.Fatalf("rows = %d", f.NumRows())
	}
	for i, field := range f.Schema().Fields() {
		if field.Name() != tbl.Columns[i].Name {
			t.Fatalf("column %d is %q, want %q", i, field.Name(), tbl.Columns[i].Name)
		}
	}
	rows := make([]parquet.Row, 20)
	r := parquet.NewReader(bytes.NewReader(buf.Bytes()))
	n, _ := r.ReadRows(rows)
	if n == 0 {
		t.Fatal("no rows read back")
	}
	row := rows[14] // not null (14 % 13 != 0)
	if got := row[0].Int64(); got != 14 {
		t.Fatalf("id = %d", got)
	}
	if got := string(row[3].ByteArray()); got != `{"n":14}` {
		t.Fatalf("payload = %q", got)
	}
	if !rows[13][2].IsNull() || rows[13][0].IsNull() {
		t.Fatalf("row 13 nulls wrong: %v", rows[13])
	}
}

func BenchmarkEncode250K(b *testing.B) {
	tbl := sampleTable()
	enc, err := New(tbl)
	if err != nil {
		b.Fatal(err)
	}
	batch := sampleBatch(tbl, 250_000)
	var buf bytes.Buffer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := enc.Encode(&buf, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(250_000*b.N)/b.Elapsed().Seconds(), "rows/s")
}
