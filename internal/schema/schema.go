// Package schema holds the neutral column and batch types that the
// PostgreSQL source fills and the BigQuery side encodes. It knows neither
// PostgreSQL nor BigQuery.
package schema

import "time"

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
}

// Key is a keyset position: the (timestamp, id) of a row.
type Key struct {
	Time time.Time
	ID   int64
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
	// MaxID is the largest id in the batch.
	MaxID int64
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
// with its copy: equal fingerprints of an append-only table with unique
// ids mean the same rows (barring an improbable coincidence of sums).
type DayFingerprint struct {
	Rows        int64
	DistinctIDs int64
	MinID       int64
	MaxID       int64
	SumID       string // exact decimal
}
