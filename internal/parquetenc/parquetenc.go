// Package parquetenc encodes schema batches as Parquet files for BigQuery
// load jobs. Columns keep the table's order (the BigQuery emulator matches
// Parquet columns by position, BigQuery itself by name) and its names.
//
// It writes the file itself, column by column, straight from the batch's
// typed vectors: one row group per batch (a file may hold several, handed
// over one at a time while the next is being read), data pages v1, PLAIN or
// dictionary (RLE_DICTIONARY) values, RLE levels, pages compressed with
// zstd. A generic Parquet library's row API costs a boxed value per cell;
// here a cell costs a few bytes appended to a page.
package parquetenc

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

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

// Encoder writes batches of one table. Concurrent files take turns a row
// group at a time; its scratch buffers are reused from one row group to
// the next.
type Encoder struct {
	mu     sync.Mutex
	table  schema.Table
	leaves []leaf
	codec  int32 // zstd; snappy and none serve the tests and measurements
	cols   []*columnWriter
	outs   []columnOut
	order  []int // the order columns are taken in by the column writers
}

// file is one Parquet file being written.
type file struct {
	w       io.Writer
	written int64
	groups  []rowGroup
}

// rowGroup is where a row group's column chunks were written.
type rowGroup struct {
	rows   int
	chunks []chunkMeta
}

// columnWriter encodes one column chunk at a time with its own scratch
// buffers and compressor: a batch's columns are encoded side by side, one
// columnWriter a goroutine.
type columnWriter struct {
	zstd   *zstd.Encoder
	codec  int32
	page   []byte // uncompressed page body
	comp   []byte // compressed page body
	hdr    compact
	rep    []uint8
	def    []uint8
	idx    []uint32 // dictionary indices of the current column
	dict   dictionary
	varint [binary.MaxVarintLen64]byte
	// dst receives the column chunk's bytes; n counts them, so that the
	// chunk's offsets are relative to its start until it is placed.
	dst io.Writer
	n   int64
}

// columnOut is one column chunk encoded ahead of its place in the file.
type columnOut struct {
	buf sliceWriter
	cm  chunkMeta
	err error
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Encoding side by side pays only for batches with enough rows; a batch of
// a few wide rows is written column after column straight to the writer,
// holding no encoded column in memory. keepOut is the largest column
// buffer kept for the next batch.
const (
	parallelRows = 4096
	keepOut      = 8 << 20
)

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
	e := &Encoder{table: t, codec: codecZstd}
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
	// One column writer a core, at most one a column.
	for range max(1, min(runtime.GOMAXPROCS(0), len(e.leaves), 4)) {
		z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
		if err != nil {
			return nil, err
		}
		e.cols = append(e.cols, &columnWriter{zstd: z})
	}
	e.outs = make([]columnOut, len(e.leaves))
	return e, nil
}

// Encode writes b as one Parquet file of one row group to w.
func (e *Encoder) Encode(w io.Writer, b *schema.Batch) error {
	return e.EncodeGroups(w, func() (*schema.Batch, error) {
		next := b
		b = nil
		return next, nil
	})
}

// EncodeGroups writes one Parquet file to w, a row group for each batch
// next returns, until it returns nil. A batch is the encoder's until next
// is called again; next may wait for its rows, the encoder holds nothing
// other files need meanwhile. A batch of no rows adds no row group.
func (e *Encoder) EncodeGroups(w io.Writer, next func() (*schema.Batch, error)) error {
	_, err := e.EncodeLayout(w, next)
	return err
}

// Layout is where a file's row groups are, for Join.
type Layout struct {
	groups []rowGroup
	end    int64 // where the last row group ends (the footer starts)
}

// Rows is the rows of the file.
func (l Layout) Rows() int {
	n := 0
	for _, g := range l.groups {
		n += g.rows
	}
	return n
}

// EncodeLayout is EncodeGroups, and returns where the file's row groups
// were written.
func (e *Encoder) EncodeLayout(w io.Writer, next func() (*schema.Batch, error)) (Layout, error) {
	f := &file{w: w}
	if err := f.write([]byte("PAR1")); err != nil {
		return Layout{}, err
	}
	for {
		b, err := next()
		if err != nil {
			return Layout{}, err
		}
		if b == nil {
			break
		}
		if b.Rows == 0 {
			continue
		}
		if err := e.rowGroup(f, b); err != nil {
			return Layout{}, err
		}
	}
	l := Layout{groups: f.groups, end: f.written}
	return l, e.finish(f)
}

// finish writes the footer of f's row groups.
func (e *Encoder) finish(f *file) error {
	footer := e.footer(f.groups)
	if err := f.write(footer); err != nil {
		return err
	}
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[:4], uint32(len(footer)))
	copy(tail[4:], "PAR1")
	return f.write(tail[:])
}

// Part is one file of this encoder, as EncodeLayout wrote it and said.
type Part struct {
	Data   []byte
	Layout Layout
}

// Joiner builds one file of the row groups of files of its encoder, in
// the order they are added: their bytes are copied as they are, and one
// footer lists them all at their new places. Joining the files of a day's
// chunks gives the file one load job can replace the day with.
type Joiner struct {
	e *Encoder
	f file
	b bytes.Buffer
}

// NewJoiner starts a joined file.
func (e *Encoder) NewJoiner() *Joiner {
	j := &Joiner{e: e}
	j.f.w = &j.b
	_ = j.f.write([]byte("PAR1")) // a bytes.Buffer does not fail
	return j
}

// Add appends p's row groups.
func (j *Joiner) Add(p Part) error {
	if p.Layout.end < 4 || p.Layout.end > int64(len(p.Data)) || string(p.Data[:4]) != "PAR1" {
		return errors.New("join parquet: a part that is not a file of this encoder's layout")
	}
	shift := j.f.written - 4
	_ = j.f.write(p.Data[4:p.Layout.end])
	for _, g := range p.Layout.groups {
		moved := rowGroup{rows: g.rows, chunks: make([]chunkMeta, len(g.chunks))}
		for k, cm := range g.chunks {
			moved.chunks[k] = cm
			moved.chunks[k].start += shift
			moved.chunks[k].dataOffset += shift
			if cm.dictOffset >= 0 {
				moved.chunks[k].dictOffset += shift
			}
		}
		j.f.groups = append(j.f.groups, moved)
	}
	return nil
}

// Len is the bytes added so far.
func (j *Joiner) Len() int { return j.b.Len() }

// Finish writes the footer and returns the file.
func (j *Joiner) Finish() []byte {
	_ = j.e.finish(&j.f)
	return j.b.Bytes()
}

// rowGroup writes b as the file's next row group.
func (e *Encoder) rowGroup(f *file, b *schema.Batch) error {
	// One table's Syncer encodes the chunks of all its dates in flight in
	// a process with this one Encoder; its buffers are reused, one row
	// group at a time.
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.cols {
		c.codec = e.codec
	}
	g := rowGroup{rows: b.Rows}
	if len(e.cols) > 1 && b.Rows >= parallelRows {
		if err := e.columnsSideBySide(f, &g, b); err != nil {
			return err
		}
	} else {
		c := e.cols[0]
		for i := range e.leaves {
			c.dst, c.n = f.w, 0
			cm, err := c.column(&e.leaves[i], &b.Vectors[i], b.Rows)
			f.written += c.n
			if err != nil {
				c.dst = nil
				return fmt.Errorf("encode parquet column %q: %w", e.leaves[i].col.Name, err)
			}
			g.place(cm, f.written-c.n)
		}
		c.dst = nil
	}
	f.groups = append(f.groups, g)
	return nil
}

// columnsSideBySide encodes the batch's columns into memory, one column
// writer a goroutine taking the next column, then writes them in order.
// The bytes are those of a column after column encoding.
func (e *Encoder) columnsSideBySide(f *file, g *rowGroup, b *schema.Batch) error {
	// Largest columns first, so that the writers end together (the
	// last column taken is a small one).
	e.order = e.order[:0]
	for i := range e.leaves {
		e.order = append(e.order, i)
	}
	slices.SortStableFunc(e.order, func(i, j int) int {
		return cmp.Compare(weight(&e.leaves[j], &b.Vectors[j]), weight(&e.leaves[i], &b.Vectors[i]))
	})
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, c := range e.cols {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(e.order) {
					return
				}
				i := e.order[k]
				o := &e.outs[i]
				o.buf.b = o.buf.b[:0]
				c.dst, c.n = &o.buf, 0
				o.cm, o.err = c.column(&e.leaves[i], &b.Vectors[i], b.Rows)
			}
		}()
	}
	wg.Wait()
	for _, c := range e.cols {
		c.dst = nil
	}
	for i := range e.outs {
		o := &e.outs[i]
		if o.err != nil {
			return fmt.Errorf("encode parquet column %q: %w", e.leaves[i].col.Name, o.err)
		}
		start := f.written
		if err := f.write(o.buf.b); err != nil {
			return err
		}
		g.place(o.cm, start)
		if cap(o.buf.b) > keepOut {
			o.buf.b = nil
		}
	}
	return nil
}

// weight is about the bytes a column's values take before compression,
// what its encoding costs.
func weight(l *leaf, v *schema.Vector) int {
	if l.col.Repeated {
		if v.Elem == nil {
			return 0
		}
		v = v.Elem
	}
	switch l.physical {
	case ptBytes, ptFixed:
		return len(v.Data) + 4*len(v.Valid)
	case ptBoolean:
		return len(v.Valid) / 8
	case ptInt32:
		return 4 * len(v.Valid)
	}
	return 8 * len(v.Valid)
}

// place records a column chunk written at start.
func (g *rowGroup) place(cm chunkMeta, start int64) {
	cm.start += start
	cm.dataOffset += start
	if cm.dictOffset >= 0 {
		cm.dictOffset += start
	}
	g.chunks = append(g.chunks, cm)
}

func (f *file) write(p []byte) error {
	n, err := f.w.Write(p)
	f.written += int64(n)
	if err != nil {
		return fmt.Errorf("encode parquet: %w", err)
	}
	return nil
}

func (c *columnWriter) write(p []byte) error {
	n, err := c.dst.Write(p)
	c.n += int64(n)
	if err != nil {
		return fmt.Errorf("encode parquet: %w", err)
	}
	return nil
}

// column encodes one column chunk to c.dst: an optional dictionary page,
// then data pages that each end on a row boundary. Its offsets are from
// the chunk's start.
func (c *columnWriter) column(l *leaf, v *schema.Vector, rows int) (chunkMeta, error) {
	cm := chunkMeta{start: c.n, dictOffset: -1}
	vals := v // the vector holding the values: the elements for a list
	nvals := rows
	if l.col.Repeated {
		vals = v.Elem
		if vals == nil {
			vals = &schema.Vector{}
		}
		nvals = len(vals.Valid)
	}
	useDict := c.dict.build(l, vals, nvals, &c.idx)
	if useDict {
		cm.dictOffset = c.n
		c.page = c.dict.appendPlain(c.page[:0], l)
		if err := c.writePage(&cm, pageDict, c.dict.n, encPlain); err != nil {
			return cm, err
		}
		cm.encodings = []int32{encPlain, encRLE, encDict}
	} else {
		cm.encodings = []int32{encPlain, encRLE}
	}
	cm.dataOffset = c.n
	// vi is the index of the next value in vals; with a dictionary, the
	// index of the next non-null value in c.idx.
	vi, di := 0, 0
	for r := 0; r < rows; {
		r1, v1 := pageRange(l, v, vals, r, rows)
		body := c.page[:0]
		levels := r1 - r
		switch {
		case l.col.Repeated:
			c.levels(l, v, r, r1)
			levels = len(c.def)
			body = appendLevels(body, c.rep, 1)
			body = appendLevels(body, c.def, 2)
		case levels >= 8 && !slices.Contains(v.Valid[r:r1], false):
			// No NULL: the definition levels are one run of 1s, the
			// bytes appendHybrid would write for it.
			body = binary.LittleEndian.AppendUint32(body, uint32(binary.PutUvarint(c.varint[:], uint64(levels)<<1)+1))
			body = binary.AppendUvarint(body, uint64(levels)<<1)
			body = append(body, 1)
		default:
			c.levels(l, v, r, r1)
			body = appendLevels(body, c.def, 1)
		}
		if useDict {
			nn := 0
			for k := vi; k < v1; k++ {
				if vals.Valid[k] {
					nn++
				}
			}
			width := max(bitWidth(uint32(c.dict.n-1)), 1)
			body = append(body, byte(width))
			body = appendHybrid(body, c.idx[di:di+nn], width)
			di += nn
		} else {
			body = appendPlain(body, l, vals, vi, v1)
		}
		c.page = body
		if err := c.writePage(&cm, pageData, levels, encoding(useDict)); err != nil {
			return cm, err
		}
		cm.values += int64(levels)
		r, vi = r1, v1
		// Let a waiting goroutine run between pages: while a chunk
		// is encoded the next one is being read, and the reader
		// should not wait for the runtime to preempt an encoder
		// (up to 10 ms, with a signal).
		runtime.Gosched()
	}
	return cm, nil
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
func pageRange(l *leaf, v, vals *schema.Vector, r, rows int) (r1, v1 int) {
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

// levels fills c.def (and c.rep for a list) for rows [r, r1).
func (c *columnWriter) levels(l *leaf, v *schema.Vector, r, r1 int) {
	c.def, c.rep = c.def[:0], c.rep[:0]
	if !l.col.Repeated {
		c.def = slices.Grow(c.def, r1-r)
		for _, ok := range v.Valid[r:r1] {
			if ok {
				c.def = append(c.def, 1)
			} else {
				c.def = append(c.def, 0)
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
			c.def, c.rep = append(c.def, 0), append(c.rep, 0)
		case lo == hi:
			c.def, c.rep = append(c.def, 1), append(c.rep, 0)
		default:
			for k := lo; k < hi; k++ {
				c.def = append(c.def, 2)
				if k == lo {
					c.rep = append(c.rep, 0)
				} else {
					c.rep = append(c.rep, 1)
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

// writePage compresses c.page and writes it with its header.
func (c *columnWriter) writePage(cm *chunkMeta, typ int32, numValues int, enc int32) error {
	switch c.codec {
	case codecZstd:
		c.comp = c.zstd.EncodeAll(c.page, c.comp[:0])
	case codecSnappy:
		c.comp = snappy.Encode(c.comp[:cap(c.comp)], c.page)
	default:
		c.comp = append(c.comp[:0], c.page...)
	}
	h := &c.hdr
	h.b, h.last, h.stack = h.b[:0], 0, h.stack[:0]
	h.i32(1, typ)
	h.i32(2, int32(len(c.page)))
	h.i32(3, int32(len(c.comp)))
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
	cm.uncompressed += int64(len(h.b) + len(c.page))
	cm.compressed += int64(len(h.b) + len(c.comp))
	if err := c.write(h.b); err != nil {
		return err
	}
	return c.write(c.comp)
}
