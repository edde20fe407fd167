// Package schema holds the neutral column and batch types that the
// PostgreSQL source fills and the BigQuery side encodes. It knows neither
// PostgreSQL nor BigQuery.
package schema

import (
	"fmt"
	"strconv"
	"time"
)

// Type is the logical type a column travels as.
type Type int

// The logical types. Each has exactly one BigQuery type (see bq.FieldType)
// and one physical representation in a Vector (see Vector).
const (
	Int64     Type = iota + 1 // Vector.Ints
	Float64                   // Vector.Floats
	Bool                      // Vector.Bools
	String                    // Vector.Data/Offsets, UTF-8
	Bytes                     // Vector.Data/Offsets
	JSON                      // Vector.Data/Offsets, JSON text
	Numeric                   // Vector.Data/Offsets, 16-byte big-endian two's complement scaled by 10^9
	Date                      // Vector.Ints, days since 1970-01-01
	Timestamp                 // Vector.Ints, microseconds since 1970-01-01 UTC
	Datetime                  // Vector.Ints, microseconds since 1970-01-01, no zone
	Time                      // Vector.Ints, microseconds since midnight
)

// NumericScale is the fixed scale of BigQuery NUMERIC.
const NumericScale = 9

func (t Type) String() string {
	switch t {
	case Int64:
		return "INT64"
	case Float64:
		return "FLOAT64"
	case Bool:
		return "BOOL"
	case String:
		return "STRING"
	case Bytes:
		return "BYTES"
	case JSON:
		return "JSON"
	case Numeric:
		return "NUMERIC"
	case Date:
		return "DATE"
	case Timestamp:
		return "TIMESTAMP"
	case Datetime:
		return "DATETIME"
	case Time:
		return "TIME"
	}
	return "UNKNOWN"
}

// Column is one column of a synced table.
type Column struct {
	Name string
	Type Type
	// Repeated: the column is an array of Type (BigQuery REPEATED).
	Repeated bool
	// SourceType is the source's own name for the type, for messages.
	SourceType string
	// SourceName is the source's name of the column when Name is not it
	// (the column is renamed on its way), for messages.
	SourceName string
}

// Table describes a synced table: its columns in source order and which of
// them are the keyset (timestamp, id).
type Table struct {
	// Source names the source table (schema-qualified, quoted as the
	// source quotes names): for messages, and so that a destination
	// remembers which table it belongs to.
	Source  string
	Columns []Column
	// TimestampIndex and IDIndex point into Columns.
	TimestampIndex int
	IDIndex        int
	// KeyKind is what the id column holds (KeyInt unless stated).
	KeyKind KeyKind
}

// KeyKind is the kind of a table's key (id) column: it decides how a
// position is compared and how a key is written as canonical text (see
// keys.go). Every kind has one order that PostgreSQL and BigQuery agree on.
type KeyKind uint8

// The key kinds.
const (
	KeyInt     KeyKind = iota // smallint, integer, bigint: INT64
	KeyText                   // text, varchar: STRING, compared byte by byte (COLLATE "C")
	KeyUUID                   // uuid: STRING, lowercase hyphenated
	KeyNumeric                // numeric(p,s) that NUMERIC holds: NUMERIC, by value
)

func (k KeyKind) String() string {
	switch k {
	case KeyInt:
		return "integer"
	case KeyText:
		return "text"
	case KeyUUID:
		return "uuid"
	case KeyNumeric:
		return "numeric"
	}
	return "unknown"
}

// Key is a keyset position: the (timestamp, key) of a row. An integer key
// is ID; any other is Text, its canonical text (CanonicalKey).
type Key struct {
	Time time.Time
	ID   int64
	Kind KeyKind
	Text string
}

// KeyString is the key's canonical text: the decimal of an integer key,
// Text otherwise. It is what fingerprints hash and what sync_control keeps
// for a key that is not an integer.
func (k Key) KeyString() string {
	if k.Kind == KeyInt {
		return strconv.FormatInt(k.ID, 10)
	}
	return k.Text
}

// Vector holds one column of a batch. Valid[i] is false for NULL. Only the
// slices matching the column's Type are used. Variable-length values are
// stored back to back in Data: value i is Data[Offsets[i]:Offsets[i+1]]
// (Offsets starts with 0), which costs 4 bytes a value where a slice
// header would cost 24.
type Vector struct {
	Valid   []bool
	Ints    []int64
	Floats  []float64
	Bools   []bool
	Data    []byte
	Offsets []uint32
	// For a repeated column, row i's elements are Elem's values
	// ListOffsets[i]:ListOffsets[i+1] (ListOffsets starts with 0).
	ListOffsets []uint32
	Elem        *Vector
}

// ElemRange is the range of row i's elements in Elem.
func (v *Vector) ElemRange(i int) (int, int) {
	return int(v.ListOffsets[i]), int(v.ListOffsets[i+1])
}

func (v *Vector) reset() {
	v.Valid = v.Valid[:0]
	v.Ints = v.Ints[:0]
	v.Floats = v.Floats[:0]
	v.Bools = v.Bools[:0]
	v.Data = v.Data[:0]
	v.Offsets = v.Offsets[:0]
	v.ListOffsets = v.ListOffsets[:0]
	if v.Elem != nil {
		v.Elem.reset()
	}
}

// AppendBytes appends a variable-length value (nil for NULL: append
// Valid false alongside).
func (v *Vector) AppendBytes(p []byte) {
	if len(v.Offsets) == 0 {
		v.Offsets = append(v.Offsets, 0)
	}
	v.Data = append(v.Data, p...)
	v.Offsets = append(v.Offsets, uint32(len(v.Data)))
}

// BytesAt returns variable-length value i; it is valid until Reset.
func (v *Vector) BytesAt(i int) []byte {
	return v.Data[v.Offsets[i]:v.Offsets[i+1]:v.Offsets[i+1]]
}

// Batch is a chunk of rows in columnar form.
type Batch struct {
	Rows    int
	Vectors []Vector
	// First and Last are the keyset positions of the first and last row.
	First, Last Key
	// MaxID is the largest id in the batch (an integer key's).
	MaxID int64
	// Hash is the sum of KeyHash over the rows' canonical keys: the
	// batch's share of DayFingerprint.Hash.
	Hash int64
	// Earliest and Latest are the rows' smallest and largest instants
	// (the timestamp column as BigQuery holds it, which decides a row's
	// partition).
	Earliest, Latest time.Time
	// Truncated means the batch stopped before its row limit because its
	// bytes reached the reader's cap: more rows may follow.
	Truncated bool
	// Bytes is about what the rows take, as the reader weighs them
	// against its cap.
	Bytes int
}

// Reset empties the batch for reuse, keeping its capacity.
func (b *Batch) Reset(ncols int) {
	b.Rows = 0
	b.MaxID = 0
	b.Hash = 0
	b.Truncated = false
	b.Bytes = 0
	b.First, b.Last = Key{}, Key{}
	b.Earliest, b.Latest = time.Time{}, time.Time{}
	if len(b.Vectors) != ncols {
		b.Vectors = make([]Vector, ncols)
	}
	for i := range b.Vectors {
		b.Vectors[i].reset()
	}
}

// DayFingerprint summarises the rows of one day, for comparing a source
// with its copy. Both sides compute it in SQL from the rows' canonical key
// text (KeyHash says how), so that equal fingerprints mean the same keys,
// barring an improbable coincidence of sums (one key exchanged for
// another leaves Hash unchanged with odds of 1 in 2^32).
type DayFingerprint struct {
	Rows int64
	// DistinctKeys counts distinct keys; a side whose keys a unique index
	// proves distinct may set it to Rows without counting.
	DistinctKeys int64
	// Hash is the sum over the rows of KeyHash of each row's fingerprint
	// text: today the canonical key (CanonicalKey). A table whose rows
	// change may later fold a per-row value into that text (the key and
	// its updated-at, say) on both sides alike: the sum stays
	// order-independent, and the comparison below stays as it is.
	Hash int64
}

// Same reports whether two fingerprints describe the same rows: the same
// count, the same keys by hash, no key twice on either side.
func (f DayFingerprint) Same(o DayFingerprint) bool {
	return f.Rows == o.Rows && f.Hash == o.Hash && f.Rows == f.DistinctKeys && o.Rows == o.DistinctKeys
}

// Duplicates is how many rows repeat a key.
func (f DayFingerprint) Duplicates() int64 { return f.Rows - f.DistinctKeys }

// String is rows/distinct keys/hash, for messages ("0" for no rows).
func (f DayFingerprint) String() string {
	if f.Rows == 0 {
		return "0"
	}
	return fmt.Sprintf("%d/%d/%d", f.Rows, f.DistinctKeys, f.Hash)
}
