// Package parquetenc encodes schema batches as Parquet files for BigQuery
// load jobs. Columns keep the table's order (the BigQuery emulator matches
// Parquet columns by position, BigQuery itself by name) and its names.
//
// It writes the file itself, column by column, straight from the batch's
// typed vectors: one row group per batch, data pages v1, PLAIN or
// dictionary (RLE_DICTIONARY) values, RLE levels, pages compressed with
// zstd. A generic Parquet library's row API costs a boxed value per cell;
// here a cell costs a few bytes appended to a page.
package parquetenc

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"

	"github.com/pgbq/pgbq/internal/schema"
)

// Parquet's enums, as the format's thrift definition numbers them.
const (
	ptBoolean = 0
	ptInt32   = 1
	ptInt64   = 2
	ptDouble  = 5
	ptBytes   = 6
	ptFixed   = 7

	repRequired = 0
	repOptional = 1
	repRepeated = 2

	encPlain = 0
	encRLE   = 3
	encDict  = 8

	codecNone   = 0
	codecSnappy = 1
	codecZstd   = 6

	pageData = 0
	pageDict = 2
)

// Page and dictionary limits. A data page holds at most pageRows rows and
// stops growing once its values reach pageBytes; a dictionary is dropped
// for PLAIN once it would pass dictMaxBytes or dictMaxEntries, or once the
// first dictProbe values show it would not pay.
const (
	pageRows       = 32768
	pageBytes      = 1 << 20
	dictMaxBytes   = 1 << 20
	dictMaxEntries = 1 << 16
	dictProbe      = 16384
)

// Encoder writes batches of one table. It is not safe for concurrent use;
// its scratch buffers are reused from one batch to the next.
type Encoder struct {
	table  schema.Table
	leaves []leaf
	zstd   *zstd.Encoder
	codec  int32 // zstd; snappy and none serve the tests and measurements

	page    []byte // uncompressed page body
	comp    []byte // compressed page body
	hdr     compact
	rep     []uint8
	def     []uint8
	idx     []uint32 // dictionary indices of the current column
	dict    dictionary
	written int64
	w       io.Writer
	chunks  []chunkMeta
}

// leaf is how one column is written.
type leaf struct {
	col        schema.Column
	physical   int32
	typeLength int32
	path       []string
}

type chunkMeta struct {
	start, dictOffset, dataOffset int64
	values                        int64
	uncompressed, compressed      int64
	encodings                     []int32
}

// New prepares the encoder for t.
func New(t schema.Table) (*Encoder, error) {
	z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, err
	}
	e := &Encoder{table: t, zstd: z, codec: codecZstd}
	for _, c := range t.Columns {
		l := leaf{col: c, path: []string{c.Name}}
		switch c.Type {
		case schema.Int64, schema.Timestamp, schema.Datetime, schema.Time:
			l.physical = ptInt64
		case schema.Date:
			l.physical = ptInt32
		case schema.Float64:
			l.physical = ptDouble
		case schema.Bool:
			l.physical = ptBoolean
		case schema.String, schema.Bytes, schema.JSON:
			l.physical = ptBytes
		case schema.Numeric:
			l.physical, l.typeLength = ptFixed, 16
		default:
			return nil, fmt.Errorf("column %q: no Parquet type for %s", c.Name, c.Type)
		}
		if c.Repeated {
			l.path = []string{c.Name, "list", "element"}
		}
		e.leaves = append(e.leaves, l)
	}
	return e, nil
}

// Encode writes b as one Parquet file to w.
func (e *Encoder) Encode(w io.Writer, b *schema.Batch) error {
	e.w, e.written = w, 0
	e.chunks = e.chunks[:0]
	if err := e.write([]byte("PAR1")); err != nil {
		return err
	}
	for i := range e.leaves {
		if err := e.column(&e.leaves[i], &b.Vectors[i], b.Rows); err != nil {
			return fmt.Errorf("encode parquet column %q: %w", e.leaves[i].col.Name, err)
		}
	}
	footer := e.footer(b.Rows)
	if err := e.write(footer); err != nil {
		return err
	}
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[:4], uint32(len(footer)))
	copy(tail[4:], "PAR1")
	err := e.write(tail[:])
	e.w = nil
	return err
}

func (e *Encoder) write(p []byte) error {
	n, err := e.w.Write(p)
	e.written += int64(n)
	if err != nil {
		return fmt.Errorf("encode parquet: %w", err)
	}
	return nil
}

// column writes one column chunk: an optional dictionary page, then data
// pages that each end on a row boundary.
func (e *Encoder) column(l *leaf, v *schema.Vector, rows int) error {
	cm := chunkMeta{start: e.written, dictOffset: -1}
	vals := v // the vector holding the values: the elements for a list
	nvals := rows
	if l.col.Repeated {
		vals = v.Elem
		if vals == nil {
			vals = &schema.Vector{}
		}
		nvals = len(vals.Valid)
	}
	useDict := e.dict.build(l, vals, nvals, &e.idx)
	if useDict {
		cm.dictOffset = e.written
		e.page = e.dict.appendPlain(e.page[:0], l)
		if err := e.writePage(&cm, pageDict, e.dict.n, encPlain); err != nil {
			return err
		}
		cm.encodings = []int32{encPlain, encRLE, encDict}
	} else {
		cm.encodings = []int32{encPlain, encRLE}
	}
	cm.dataOffset = e.written
	// vi is the index of the next value in vals; with a dictionary, the
	// index of the next non-null value in e.idx.
	vi, di := 0, 0
	for r := 0; r < rows; {
		r1, v1 := e.pageRange(l, v, vals, r, rows)
		e.levels(l, v, r, r1)
		body := e.page[:0]
		if l.col.Repeated {
			body = appendLevels(body, e.rep, 1)
			body = appendLevels(body, e.def, 2)
		} else {
			body = appendLevels(body, e.def, 1)
		}
		if useDict {
			nn := 0
			for k := vi; k < v1; k++ {
				if vals.Valid[k] {
					nn++
				}
			}
			width := max(bitWidth(uint32(e.dict.n-1)), 1)
			body = append(body, byte(width))
			body = appendHybrid(body, e.idx[di:di+nn], width)
			di += nn
		} else {
			body = appendPlain(body, l, vals, vi, v1)
		}
		e.page = body
		if err := e.writePage(&cm, pageData, len(e.def), encoding(useDict)); err != nil {
			return err
		}
		cm.values += int64(len(e.def))
		r, vi = r1, v1
	}
	e.chunks = append(e.chunks, cm)
	return nil
}

func encoding(dict bool) int32 {
	if dict {
		return encDict
	}
	return encPlain
}

func bitWidth(v uint32) uint {
	w := uint(0)
	for v != 0 {
		w++
		v >>= 1
	}
	return w
}

// pageRange picks the rows [r, r1) of the next page and the values
// [vi, v1) they hold.
func (e *Encoder) pageRange(l *leaf, v, vals *schema.Vector, r, rows int) (r1, v1 int) {
	limit := min(rows, r+pageRows)
	if !l.col.Repeated {
		if l.physical != ptBytes && l.physical != ptFixed {
			return limit, limit
		}
		// Variable length: stop once the page's bytes reach pageBytes.
		base := vals.Offsets[r]
		r1 = r + 1
		for r1 < limit && int(vals.Offsets[r1]-base) < pageBytes {
			r1++
		}
		return r1, r1
	}
	r1 = r + 1
	base := v.ListOffsets[r]
	for r1 < limit && v.ListOffsets[r1]-base < pageRows {
		if len(vals.Offsets) > 0 && int(vals.Offsets[v.ListOffsets[r1]]-vals.Offsets[base]) >= pageBytes {
			break
		}
		r1++
	}
	return r1, int(v.ListOffsets[r1])
}

// levels fills e.def (and e.rep for a list) for rows [r, r1).
func (e *Encoder) levels(l *leaf, v *schema.Vector, r, r1 int) {
	e.def, e.rep = e.def[:0], e.rep[:0]
	if !l.col.Repeated {
		e.def = slices.Grow(e.def, r1-r)
		for _, ok := range v.Valid[r:r1] {
			if ok {
				e.def = append(e.def, 1)
			} else {
				e.def = append(e.def, 0)
			}
		}
		return
	}
	// LIST levels: definition 0 is a NULL list, 1 an empty list, 2 an
	// element (elements are required); repetition 1 continues a list.
	for i := r; i < r1; i++ {
		lo, hi := v.ElemRange(i)
		switch {
		case !v.Valid[i]:
			e.def, e.rep = append(e.def, 0), append(e.rep, 0)
		case lo == hi:
			e.def, e.rep = append(e.def, 1), append(e.rep, 0)
		default:
			for k := lo; k < hi; k++ {
				e.def = append(e.def, 2)
				if k == lo {
					e.rep = append(e.rep, 0)
				} else {
					e.rep = append(e.rep, 1)
				}
			}
		}
	}
}

// appendPlain appends the non-null values [lo, hi) of vals in PLAIN encoding.
func appendPlain(dst []byte, l *leaf, vals *schema.Vector, lo, hi int) []byte {
	valid := vals.Valid
	switch l.physical {
	case ptInt64:
		for k := lo; k < hi; k++ {
			if valid[k] {
				dst = binary.LittleEndian.AppendUint64(dst, uint64(vals.Ints[k]))
			}
		}
	case ptInt32:
		for k := lo; k < hi; k++ {
			if valid[k] {
				dst = binary.LittleEndian.AppendUint32(dst, uint32(int32(vals.Ints[k])))
			}
		}
	case ptDouble:
		for k := lo; k < hi; k++ {
			if valid[k] {
				dst = binary.LittleEndian.AppendUint64(dst, float64bits(vals.Floats[k]))
			}
		}
	case ptBoolean:
		var acc byte
		n := 0
		for k := lo; k < hi; k++ {
			if !valid[k] {
				continue
			}
			if vals.Bools[k] {
				acc |= 1 << (n % 8)
			}
			n++
			if n%8 == 0 {
				dst = append(dst, acc)
				acc = 0
			}
		}
		if n%8 != 0 {
			dst = append(dst, acc)
		}
	case ptBytes:
		for k := lo; k < hi; k++ {
			if valid[k] {
				p := vals.BytesAt(k)
				dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p)))
				dst = append(dst, p...)
			}
		}
	case ptFixed:
		for k := lo; k < hi; k++ {
			if valid[k] {
				dst = append(dst, vals.BytesAt(k)...)
			}
		}
	}
	return dst
}

// writePage compresses e.page and writes it with its header.
func (e *Encoder) writePage(cm *chunkMeta, typ int32, numValues int, enc int32) error {
	switch e.codec {
	case codecZstd:
		e.comp = e.zstd.EncodeAll(e.page, e.comp[:0])
	case codecSnappy:
		e.comp = snappy.Encode(e.comp[:cap(e.comp)], e.page)
	default:
		e.comp = append(e.comp[:0], e.page...)
	}
	h := &e.hdr
	h.b, h.last, h.stack = h.b[:0], 0, h.stack[:0]
	h.i32(1, typ)
	h.i32(2, int32(len(e.page)))
	h.i32(3, int32(len(e.comp)))
	if typ == pageDict {
		h.begin(7) // dictionary_page_header
		h.i32(1, int32(numValues))
		h.i32(2, enc)
		h.end()
	} else {
		h.begin(5) // data_page_header
		h.i32(1, int32(numValues))
		h.i32(2, enc)
		h.i32(3, encRLE) // definition levels
		h.i32(4, encRLE) // repetition levels
		h.end()
	}
	h.b = append(h.b, 0) // end of PageHeader
	cm.uncompressed += int64(len(h.b) + len(e.page))
	cm.compressed += int64(len(h.b) + len(e.comp))
	if err := e.write(h.b); err != nil {
		return err
	}
	return e.write(e.comp)
}
