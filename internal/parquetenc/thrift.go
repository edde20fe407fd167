package parquetenc

import "encoding/binary"

// Thrift compact protocol, the encoding of Parquet's page headers and
// footer: only what those structures need (integers, strings, booleans,
// nested structs and lists of structs or strings).
const (
	tTrue   = 1
	tFalse  = 2
	tI32    = 5
	tI64    = 6
	tBinary = 8
	tList   = 9
	tStruct = 12
)

// compact writes one thrift value; nested structs push the last field id.
type compact struct {
	b     []byte
	last  int16
	stack []int16
}

func (w *compact) header(id int16, typ byte) {
	if d := id - w.last; d > 0 && d <= 15 {
		w.b = append(w.b, byte(d)<<4|typ)
	} else {
		w.b = append(w.b, typ)
		w.b = binary.AppendVarint(w.b, int64(id))
	}
	w.last = id
}

func (w *compact) i32(id int16, v int32) {
	w.header(id, tI32)
	w.b = binary.AppendVarint(w.b, int64(v))
}

func (w *compact) i64(id int16, v int64) {
	w.header(id, tI64)
	w.b = binary.AppendVarint(w.b, v)
}

func (w *compact) str(id int16, s string) {
	w.header(id, tBinary)
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *compact) boolean(id int16, v bool) {
	if v {
		w.header(id, tTrue)
	} else {
		w.header(id, tFalse)
	}
}

// begin opens a struct: a field of the current struct (id > 0) or an
// element of a list (id 0).
func (w *compact) begin(id int16) {
	if id > 0 {
		w.header(id, tStruct)
	}
	w.stack = append(w.stack, w.last)
	w.last = 0
}

func (w *compact) end() {
	w.b = append(w.b, 0) // stop
	w.last = w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
}

// list opens a list field of n elements of type elem.
func (w *compact) list(id int16, elem byte, n int) {
	w.header(id, tList)
	if n < 15 {
		w.b = append(w.b, byte(n)<<4|elem)
	} else {
		w.b = append(w.b, 0xf0|elem)
		w.b = binary.AppendUvarint(w.b, uint64(n))
	}
}

// listStr writes a list of strings.
func (w *compact) listStr(id int16, ss []string) {
	w.list(id, tBinary, len(ss))
	for _, s := range ss {
		w.b = binary.AppendUvarint(w.b, uint64(len(s)))
		w.b = append(w.b, s...)
	}
}

// listI32 writes a list of i32 (enums).
func (w *compact) listI32(id int16, vs []int32) {
	w.list(id, tI32, len(vs))
	for _, v := range vs {
		w.b = binary.AppendVarint(w.b, int64(v))
	}
}
