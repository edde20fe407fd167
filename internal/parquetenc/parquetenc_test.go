package parquetenc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/pgbq/pgbq/internal/schema"
)

func allTypesTable() schema.Table {
	return schema.Table{Columns: []schema.Column{
		{Name: "id", Type: schema.Int64}, {Name: "user_id", Type: schema.Int64}, {Name: "action", Type: schema.String},
		{Name: "payload", Type: schema.JSON}, {Name: "amount", Type: schema.Numeric}, {Name: "score", Type: schema.Float64},
		{Name: "ok", Type: schema.Bool}, {Name: "day", Type: schema.Date}, {Name: "created_at", Type: schema.Timestamp},
		{Name: "local", Type: schema.Datetime}, {Name: "at", Type: schema.Time}, {Name: "blob", Type: schema.Bytes},
		{Name: "tags", Type: schema.String, Repeated: true}, {Name: "nums", Type: schema.Int64, Repeated: true},
		{Name: "big", Type: schema.String}, {Name: "price", Type: schema.Numeric}, {Name: "shift", Type: schema.Date},
	}, IDIndex: 0, TimestampIndex: 8}
}

// cell is a decoded value for comparison: nil for NULL, a []any for a list.
type cell = any

// randomBatch fills a batch with n rows whose values repeat in some
// columns (dictionary pages) and not in others (PLAIN), with NULLs, empty
// lists and, every so often, a value large enough to end a page on its own.
func randomBatch(t schema.Table, n int, rng *rand.Rand) (*schema.Batch, [][]cell) {
	b := &schema.Batch{}
	b.Reset(len(t.Columns))
	want := make([][]cell, n)
	dec := make([]byte, 16)
	for i := 0; i < n; i++ {
		row := make([]cell, len(t.Columns))
		for c, col := range t.Columns {
			v := &b.Vectors[c]
			if col.Repeated {
				if v.Elem == nil {
					v.Elem = &schema.Vector{}
					v.ListOffsets = append(v.ListOffsets, 0)
				}
				v.Valid = append(v.Valid, true)
				k := rng.IntN(4)
				list := []any{}
				for range k {
					v.Elem.Valid = append(v.Elem.Valid, true)
					if col.Type == schema.String {
						s := fmt.Sprintf("t%d", rng.IntN(5))
						v.Elem.AppendBytes([]byte(s))
						list = append(list, s)
					} else {
						x := rng.Int64N(1000) - 500
						v.Elem.Ints = append(v.Elem.Ints, x)
						list = append(list, x)
					}
				}
				v.ListOffsets = append(v.ListOffsets, uint32(len(v.Elem.Valid)))
				row[c] = list
				continue
			}
			null := c != 0 && rng.IntN(7) == 0
			v.Valid = append(v.Valid, !null)
			var x cell
			switch col.Type {
			case schema.Int64, schema.Date, schema.Timestamp, schema.Datetime, schema.Time:
				var n int64
				switch col.Name {
				case "id":
					n = int64(i) * 3
				case "user_id":
					n = rng.Int64N(20) // repeats: dictionary
				case "day":
					n = rng.Int64N(40000) - 20000
				case "shift":
					n = rng.Int64N(3) // repeats: an INT32 dictionary
				case "at":
					n = rng.Int64N(86_400_000_000)
				default:
					n = rng.Int64() >> 2
					if rng.IntN(2) == 0 {
						n = -n
					}
				}
				v.Ints = append(v.Ints, n)
				x = n
			case schema.Float64:
				f := rng.NormFloat64() * 1e6
				v.Floats = append(v.Floats, f)
				x = f
			case schema.Bool:
				ok := rng.IntN(2) == 0
				v.Bools = append(v.Bools, ok)
				x = ok
			case schema.Numeric:
				for k := range dec {
					dec[k] = byte(rng.Uint32())
					if col.Name == "price" { // repeats: a fixed-length dictionary
						dec[k] = byte(rng.IntN(2))
					}
				}
				v.AppendBytes(dec)
				x = string(dec)
			default:
				var s string
				switch col.Name {
				case "action":
					s = []string{"view", "click", "", "login"}[rng.IntN(4)]
				case "big":
					if rng.IntN(10000) == 0 {
						s = string(bytes.Repeat([]byte{'x'}, pageBytes+rng.IntN(100)))
					} else {
						s = fmt.Sprintf("big %d", rng.Int())
					}
				default:
					s = fmt.Sprintf(`{"n":%d}`, rng.Int())
				}
				v.AppendBytes([]byte(s))
				x = s
			}
			if null {
				x = nil
			}
			row[c] = x
		}
		want[i] = row
		b.Rows++
	}
	return b, want
}

// readBack decodes a file with an independent Parquet reader.
func readBack(t *testing.T, tbl schema.Table, file []byte) [][]cell {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	for i, field := range f.Schema().Fields() {
		if field.Name() != tbl.Columns[i].Name {
			t.Fatalf("column %d is %q, want %q", i, field.Name(), tbl.Columns[i].Name)
		}
	}
	r := parquet.NewReader(bytes.NewReader(file))
	defer r.Close()
	var got [][]cell
	buf := make([]parquet.Row, 100)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			out := make([]cell, len(tbl.Columns))
			for c := range out {
				if tbl.Columns[c].Repeated {
					out[c] = []any{}
				}
			}
			for _, v := range row {
				c := v.Column()
				col := tbl.Columns[c]
				if col.Repeated {
					if v.DefinitionLevel() == 2 {
						out[c] = append(out[c].([]any), plainValue(col.Type, v))
					}
					continue
				}
				if !v.IsNull() {
					out[c] = plainValue(col.Type, v)
				}
			}
			got = append(got, out)
		}
		if err != nil {
			break
		}
	}
	if int64(len(got)) != f.NumRows() {
		t.Fatalf("read %d rows, file says %d", len(got), f.NumRows())
	}
	return got
}

func plainValue(t schema.Type, v parquet.Value) any {
	switch t {
	case schema.Int64, schema.Timestamp, schema.Datetime, schema.Time:
		return v.Int64()
	case schema.Date:
		return int64(v.Int32())
	case schema.Float64:
		return v.Double()
	case schema.Bool:
		return v.Boolean()
	default:
		return string(v.ByteArray())
	}
}

// Every value, NULL and list element comes back from an independent
// reader, in the table's column order, through dictionary and PLAIN
// pages, pages ended by rows and by bytes, and a reused encoder.
func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	tbl := allTypesTable()
	enc, err := New(tbl)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{40000, 1, 0, 5000} {
		b, want := randomBatch(tbl, n, rng)
		codecs := []int32{codecZstd}
		if n == 5000 {
			codecs = append(codecs, codecSnappy, codecNone)
		}
		for _, codec := range codecs {
			enc.codec = codec
			var buf bytes.Buffer
			if err := enc.Encode(&buf, b); err != nil {
				t.Fatal(err)
			}
			got := readBack(t, tbl, buf.Bytes())
			if n == 0 && len(got) == 0 {
				continue
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%d rows, codec %d: values differ (-want +got):\n%.3000s", n, codec, diff)
			}
		}
	}
}

// A file of several row groups, batches handed over one at a time (one of
// them empty), reads back as their rows in order, and its footer lists
// one row group per non-empty batch with that batch's row count.
func TestEncodeGroupsRoundTrip(t *testing.T) {
	t.Parallel()
	tbl := allTypesTable()
	enc, err := New(tbl)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var batches []*schema.Batch
	var want [][]cell
	for _, n := range []int{7000, 0, 1, 12000} {
		b, w := randomBatch(tbl, n, rng)
		batches = append(batches, b)
		want = append(want, w...)
	}
	var buf bytes.Buffer
	i := 0
	if err := enc.EncodeGroups(&buf, func() (*schema.Batch, error) {
		if i == len(batches) {
			return nil, nil
		}
		i++
		return batches[i-1], nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, readBack(t, tbl, buf.Bytes())); diff != "" {
		t.Fatalf("values differ (-want +got):\n%.3000s", diff)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var rows []int64
	for _, g := range f.Metadata().RowGroups {
		rows = append(rows, g.NumRows)
	}
	if !slices.Equal(rows, []int64{7000, 1, 12000}) {
		t.Fatalf("row groups of %v rows, want [7000 1 12000]", rows)
	}
	// A failing batch source fails the file.
	errGone := errors.New("connection gone")
	if err := enc.EncodeGroups(io.Discard, func() (*schema.Batch, error) { return nil, errGone }); !errors.Is(err, errGone) {
		t.Fatalf("EncodeGroups with a failing source: %v, want %v", err, errGone)
	}
}

// Files joined are one file of their row groups, in order, read back
// whole; a part that is not a file of the encoder is refused.
func TestJoin(t *testing.T) {
	t.Parallel()
	tbl := allTypesTable()
	enc, err := New(tbl)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var parts []Part
	var want [][]cell
	for _, sizes := range [][]int{{5000, 3}, {1}, {}, {9000, 4096}} {
		var batches []*schema.Batch
		for _, n := range sizes {
			b, w := randomBatch(tbl, n, rng)
			batches = append(batches, b)
			want = append(want, w...)
		}
		var buf bytes.Buffer
		i := 0
		l, err := enc.EncodeLayout(&buf, func() (*schema.Batch, error) {
			if i == len(batches) {
				return nil, nil
			}
			i++
			return batches[i-1], nil
		})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, Part{Data: buf.Bytes(), Layout: l})
	}
	j := enc.NewJoiner()
	for _, p := range parts {
		if err := j.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	joined := bytes.NewBuffer(j.Finish())
	if diff := cmp.Diff(want, readBack(t, tbl, joined.Bytes())); diff != "" {
		t.Fatalf("values differ (-want +got):\n%.3000s", diff)
	}
	f, err := parquet.OpenFile(bytes.NewReader(joined.Bytes()), int64(joined.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var rows []int64
	for _, g := range f.Metadata().RowGroups {
		rows = append(rows, g.NumRows)
	}
	if !slices.Equal(rows, []int64{5000, 3, 1, 9000, 4096}) {
		t.Fatalf("row groups of %v rows, want [5000 3 1 9000 4096]", rows)
	}
	if got := f.NumRows(); got != 18100 {
		t.Fatalf("joined file holds %d rows, want 18100", got)
	}
	if err := enc.NewJoiner().Add(Part{Data: []byte("not parquet"), Layout: parts[0].Layout}); err == nil {
		t.Fatal("Add of a part that is not a file of the encoder: no error")
	}
}

// The logical types are the ones BigQuery maps to the table's types;
// JSON travels as its text, a STRING (staging holds it as STRING).
func TestEncodeSchema(t *testing.T) {
	t.Parallel()
	tbl := allTypesTable()
	enc, err := New(tbl)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := randomBatch(tbl, 10, rand.New(rand.NewPCG(3, 4)))
	var buf bytes.Buffer
	if err := enc.Encode(&buf, b); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id": "INT(64,true)", "action": "STRING", "payload": "STRING", "amount": "DECIMAL(38,9)", "score": "<nil>",
		"ok": "<nil>", "day": "DATE", "created_at": "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"local": "TIMESTAMP(isAdjustedToUTC=false,unit=MICROS)", "at": "TIME(isAdjustedToUTC=false,unit=MICROS)",
		"blob": "<nil>", "tags": "LIST",
	}
	for _, e := range f.Metadata().Schema[1:] {
		w, ok := want[e.Name]
		if !ok {
			continue
		}
		got := "<nil>"
		if e.LogicalType.Value != nil {
			got = e.LogicalType.Value.String()
		}
		if got != w {
			t.Errorf("column %s: logical type %s, want %s", e.Name, got, w)
		}
	}
}

func TestAppendHybrid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		vals  []uint8
		width uint
		want  []byte
	}{
		// A run of 10 ones: header 10<<1, value byte.
		{"run", []uint8{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 1, []byte{20, 1}},
		// 3 values bit-packed in one group of 8: header 1<<1|1, LSB first.
		{"packed", []uint8{1, 0, 1}, 1, []byte{3, 0b101}},
		// Width 2: 0,1,2,3 then zero padding: two bytes.
		{"width2", []uint8{0, 1, 2, 3}, 2, []byte{3, 0b11100100, 0}},
		// 8 mixed values packed, then a run of 9 twos.
		{"mixed", []uint8{1, 0, 1, 0, 1, 0, 1, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 2, []byte{3, 0b00010001, 0b00010001, 18, 2}},
	} {
		if got := appendHybrid(nil, tc.vals, tc.width); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, got, tc.want)
		}
	}
}

// activityBatch is the bench table's shape: rising ids and times, a few
// hundred distinct paths, a 1-in-3 NULL decimal.
func activityBatch(n int) (schema.Table, *schema.Batch) {
	tbl := schema.Table{Columns: []schema.Column{
		{Name: "id", Type: schema.Int64}, {Name: "user_id", Type: schema.Int64}, {Name: "action", Type: schema.String},
		{Name: "path", Type: schema.String}, {Name: "payload", Type: schema.JSON}, {Name: "ip", Type: schema.String},
		{Name: "amount", Type: schema.Numeric}, {Name: "created_at", Type: schema.Timestamp},
	}, IDIndex: 0, TimestampIndex: 7}
	b := &schema.Batch{}
	b.Reset(len(tbl.Columns))
	actions := []string{"view", "click", "login", "logout", "purchase"}
	dec := make([]byte, 16)
	for g := 1; g <= n; g++ {
		v := b.Vectors
		for c := range v {
			v[c].Valid = append(v[c].Valid, c != 6 || g%3 == 0)
		}
		v[0].Ints = append(v[0].Ints, int64(g))
		v[1].Ints = append(v[1].Ints, int64(g%5000))
		v[2].AppendBytes([]byte(actions[g%5]))
		v[3].AppendBytes(fmt.Appendf(nil, "/page/%d", g%300))
		v[4].AppendBytes(fmt.Appendf(nil, `{"ok": %v, "session": %d}`, g%11 != 0, g%9973))
		v[5].AppendBytes(fmt.Appendf(nil, "10.%d.%d.%d", g%200, g%250, g%240))
		dec[15] = byte(g)
		v[6].AppendBytes(dec)
		v[7].Ints = append(v[7].Ints, 1_709_251_200_000_000+int64(g)*43_200)
		b.Rows++
	}
	return tbl, b
}

func BenchmarkEncode250K(b *testing.B) {
	tbl, batch := activityBatch(250_000)
	enc, err := New(tbl)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	cpu0 := cpuTime()
	for b.Loop() {
		buf.Reset()
		if err := enc.Encode(&buf, batch); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time, not wall time: the machine may be shared.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N)*4, "cpu-s/Mrows")
	b.ReportMetric(float64(buf.Len())/250_000, "bytes/row")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// One table's Syncer encodes the chunks of several dates in flight with
// one Encoder (LOADER_CONCURRENCY > 1, concurrent push requests): encodes
// at once each come back whole. (Before Encode took turns, a loader under
// make chaos crashed with a nil writer here.)
func TestConcurrentEncodesComeBackWhole(t *testing.T) {
	t.Parallel()
	tbl := allTypesTable()
	enc, err := New(tbl)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	batches, wants := make([]*schema.Batch, n), make([][][]cell, n)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range n {
		batches[i], wants[i] = randomBatch(tbl, 20000, rng)
	}
	bufs := make([]bytes.Buffer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = enc.Encode(&bufs[i], batches[i]) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if diff := cmp.Diff(wants[i], readBack(t, tbl, bufs[i].Bytes())); diff != "" {
			t.Fatalf("encode %d: values differ (-want +got):\n%.2000s", i, diff)
		}
	}
}
