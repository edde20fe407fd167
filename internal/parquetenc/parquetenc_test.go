package parquetenc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	// Read every row back and compare every cell with the batch.
	r := parquet.NewReader(bytes.NewReader(buf.Bytes()))
	var got []parquet.Row
	for {
		rows := make([]parquet.Row, 512)
		n, err := r.ReadRows(rows)
		got = append(got, rows[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read back after %d rows: %v", len(got), err)
		}
	}
	if len(got) != b.Rows {
		t.Fatalf("read back %d rows, want %d", len(got), b.Rows)
	}
	for i, row := range got {
		if len(row) != len(tbl.Columns) {
			t.Fatalf("row %d has %d values, want %d", i, len(row), len(tbl.Columns))
		}
		for c, col := range tbl.Columns {
			if msg := cellDiff(col.Type, &b.Vectors[c], i, row[c]); msg != "" {
				t.Fatalf("row %d column %s: %s", i, col.Name, msg)
			}
		}
	}
}

// cellDiff says how the value read back differs from row i of v.
func cellDiff(typ schema.Type, v *schema.Vector, i int, got parquet.Value) string {
	if !v.Valid[i] {
		if !got.IsNull() {
			return fmt.Sprintf("got %v, want NULL", got)
		}
		return ""
	}
	if got.IsNull() {
		return "got NULL"
	}
	var same bool
	switch typ {
	case schema.Int64, schema.Timestamp:
		same = got.Int64() == v.Ints[i]
	case schema.Date:
		same = int64(got.Int32()) == v.Ints[i]
	case schema.Float64:
		same = got.Double() == v.Floats[i]
	case schema.Bool:
		same = got.Boolean() == v.Bools[i]
	default: // numeric (16-byte decimal), strings, JSON
		same = bytes.Equal(got.ByteArray(), v.BytesAt(i))
	}
	if !same {
		return fmt.Sprintf("got %v", got)
	}
	return ""
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
