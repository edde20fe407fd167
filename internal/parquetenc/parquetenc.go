// Package parquetenc encodes schema batches as Parquet files for BigQuery
// load jobs. Columns keep the table's order (the BigQuery emulator matches
// Parquet columns by position, BigQuery itself by name) and its names.
package parquetenc

import (
	"fmt"
	"io"
	"reflect"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"

	"github.com/pgbq/pgbq/internal/schema"
)

// Encoder writes batches of one table. It is not safe for concurrent use.
type Encoder struct {
	table  schema.Table
	schema *parquet.Schema
	w      *parquet.Writer // reused: its column buffers are the bulk of encoding memory
	values []parquet.Value
	rows   []parquet.Row
}

// rowGroupRows bounds a row group, and with it what the writer buffers
// before flushing pages to the output.
const rowGroupRows = 65536

// New builds the Parquet schema for t.
func New(t schema.Table) (*Encoder, error) {
	fields := make([]parquet.Field, len(t.Columns))
	for i, c := range t.Columns {
		n, err := node(c.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		if c.Repeated {
			n = parquet.List(n) // elements required: BigQuery arrays hold no NULL
		}
		fields[i] = field{Node: parquet.Optional(n), name: c.Name}
	}
	return &Encoder{table: t, schema: parquet.NewSchema("row", orderedGroup{fields: fields})}, nil
}

func node(t schema.Type) (parquet.Node, error) {
	switch t {
	case schema.Int64:
		return parquet.Int(64), nil
	case schema.Float64:
		return parquet.Leaf(parquet.DoubleType), nil
	case schema.Bool:
		return parquet.Leaf(parquet.BooleanType), nil
	case schema.String:
		return parquet.String(), nil
	case schema.Bytes:
		return parquet.Leaf(parquet.ByteArrayType), nil
	case schema.JSON:
		return parquet.JSON(), nil
	case schema.Numeric:
		return parquet.Decimal(schema.NumericScale, 38, parquet.FixedLenByteArrayType(16)), nil
	case schema.Date:
		return parquet.Date(), nil
	case schema.Timestamp:
		return parquet.TimestampAdjusted(parquet.Microsecond, true), nil
	case schema.Datetime:
		return parquet.TimestampAdjusted(parquet.Microsecond, false), nil
	case schema.Time:
		return parquet.TimeAdjusted(parquet.Microsecond, false), nil
	}
	return nil, fmt.Errorf("no Parquet type for %s", t)
}

const rowsPerWrite = 4096

// Encode writes b as one Parquet file to w.
func (e *Encoder) Encode(w io.Writer, b *schema.Batch) error {
	if e.w == nil {
		e.w = parquet.NewWriter(w, e.schema, parquet.Compression(&snappy.Codec{}), parquet.MaxRowsPerRowGroup(rowGroupRows))
	} else {
		e.w.Reset(w)
	}
	pw := e.w
	ncols := len(e.table.Columns)
	if cap(e.rows) < rowsPerWrite {
		e.values = make([]parquet.Value, 0, rowsPerWrite*ncols)
		e.rows = make([]parquet.Row, rowsPerWrite)
	}
	for start := 0; start < b.Rows; start += rowsPerWrite {
		n := min(rowsPerWrite, b.Rows-start)
		// Rows are slices of one buffer; a row holds a value per element
		// of its repeated columns, so rows differ in length.
		vals := e.values[:0]
		ends := e.rows[:n]
		for r := 0; r < n; r++ {
			i := start + r
			begin := len(vals)
			for c := 0; c < ncols; c++ {
				col := &e.table.Columns[c]
				v := &b.Vectors[c]
				if !col.Repeated {
					vals = append(vals, value(col.Type, v, i).Level(0, defLevel(v, i), c))
					continue
				}
				// LIST levels: definition 1 is an empty list, 2 an element
				// (elements are required); repetition 1 continues a list.
				lo, hi := v.ElemRange(i)
				if lo == hi {
					vals = append(vals, parquet.NullValue().Level(0, 1, c))
				}
				for k := lo; k < hi; k++ {
					rep := 1
					if k == lo {
						rep = 0
					}
					vals = append(vals, value(col.Type, v.Elem, k).Level(rep, 2, c))
				}
			}
			ends[r] = parquet.Row(vals[begin:len(vals):len(vals)])
		}
		// vals may have grown into a new array: rows point into it.
		e.values = vals
		if _, err := pw.WriteRows(ends); err != nil {
			return fmt.Errorf("encode parquet: %w", err)
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("encode parquet: %w", err)
	}
	return nil
}

func defLevel(v *schema.Vector, i int) int {
	if v.Valid[i] {
		return 1
	}
	return 0
}

func value(t schema.Type, v *schema.Vector, i int) parquet.Value {
	if !v.Valid[i] {
		return parquet.NullValue()
	}
	switch t {
	case schema.Int64, schema.Timestamp, schema.Datetime, schema.Time:
		return parquet.Int64Value(v.Ints[i])
	case schema.Date:
		return parquet.Int32Value(int32(v.Ints[i]))
	case schema.Float64:
		return parquet.DoubleValue(v.Floats[i])
	case schema.Bool:
		return parquet.BooleanValue(v.Bools[i])
	case schema.Numeric:
		return parquet.FixedLenByteArrayValue(v.BytesAt(i))
	default:
		return parquet.ByteArrayValue(v.BytesAt(i))
	}
}

// orderedGroup is a Parquet group whose fields keep the order given;
// parquet.Group sorts them by name.
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g orderedGroup) Fields() []parquet.Field { return g.fields }

type field struct {
	parquet.Node
	name string
}

func (f field) Name() string { return f.name }

func (f field) Value(reflect.Value) reflect.Value { return reflect.Value{} }
