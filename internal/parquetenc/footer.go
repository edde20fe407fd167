package parquetenc

import (
	"math"

	"github.com/pgbq/pgbq/internal/schema"
)

// Converted (legacy) types, written next to the logical types for older
// readers.
const (
	ctUTF8            = 0
	ctList            = 3
	ctDecimal         = 5
	ctDate            = 6
	ctTimeMicros      = 8
	ctTimestampMicros = 10
	ctInt64           = 18
)

// LogicalType union members.
const (
	ltString    = 1
	ltList      = 3
	ltDecimal   = 5
	ltDate      = 6
	ltTime      = 7
	ltTimestamp = 8
	ltInteger   = 10
)

func float64bits(f float64) uint64 { return math.Float64bits(f) }

// footer is the file's FileMetaData.
func (e *Encoder) footer(groups []rowGroup) []byte {
	w := &compact{}
	w.i32(1, 1) // version
	n := 1
	for _, l := range e.leaves {
		n++
		if l.col.Repeated {
			n += 2
		}
	}
	w.list(2, tStruct, n)
	w.begin(0)
	w.str(4, "schema")
	w.i32(5, int32(len(e.leaves)))
	w.end()
	for i := range e.leaves {
		l := &e.leaves[i]
		if l.col.Repeated {
			w.begin(0)
			w.i32(3, repOptional)
			w.str(4, l.col.Name)
			w.i32(5, 1)
			w.i32(6, ctList)
			w.begin(10)
			w.begin(ltList)
			w.end()
			w.end()
			w.end()
			w.begin(0)
			w.i32(3, repRepeated)
			w.str(4, "list")
			w.i32(5, 1)
			w.end()
			e.leafElement(w, l, repRequired, "element")
			continue
		}
		e.leafElement(w, l, repOptional, l.col.Name)
	}
	rows := 0
	for _, g := range groups {
		rows += g.rows
	}
	w.i64(3, int64(rows))
	w.list(4, tStruct, len(groups))
	for _, g := range groups {
		e.rowGroupMeta(w, g)
	}
	w.str(6, "pgbq")
	w.b = append(w.b, 0)
	return w.b
}

// rowGroupMeta writes a RowGroup.
func (e *Encoder) rowGroupMeta(w *compact, g rowGroup) {
	w.begin(0)
	w.list(1, tStruct, len(g.chunks))
	var total, totalComp int64
	for i, cm := range g.chunks {
		l := &e.leaves[i]
		total += cm.uncompressed
		totalComp += cm.compressed
		w.begin(0) // ColumnChunk
		w.i64(2, cm.start)
		w.begin(3) // ColumnMetaData
		w.i32(1, l.physical)
		w.listI32(2, cm.encodings)
		w.listStr(3, l.path)
		w.i32(4, e.codec)
		w.i64(5, cm.values)
		w.i64(6, cm.uncompressed)
		w.i64(7, cm.compressed)
		w.i64(9, cm.dataOffset)
		if cm.dictOffset >= 0 {
			w.i64(11, cm.dictOffset)
		}
		w.end()
		w.end()
	}
	w.i64(2, total)
	w.i64(3, int64(g.rows))
	if len(g.chunks) > 0 {
		w.i64(5, g.chunks[0].start)
	}
	w.i64(6, totalComp)
	w.end()
}

// leafElement writes the SchemaElement of a column's values.
func (e *Encoder) leafElement(w *compact, l *leaf, repetition int32, name string) {
	w.begin(0)
	w.i32(1, l.physical)
	if l.typeLength > 0 {
		w.i32(2, l.typeLength)
	}
	w.i32(3, repetition)
	w.str(4, name)
	logical := func(id int16, body func()) {
		w.begin(10)
		w.begin(id)
		body()
		w.end()
		w.end()
	}
	unit := func() { // TimeUnit: MICROS
		w.begin(2)
		w.begin(2)
		w.end()
		w.end()
	}
	switch l.col.Type {
	case schema.Int64:
		w.i32(6, ctInt64)
		logical(ltInteger, func() {
			w.header(1, 3) // i8
			w.b = append(w.b, 64)
			w.boolean(2, true)
		})
	case schema.String, schema.JSON:
		// JSON is written as its text, a STRING: BigQuery's batch loads of
		// JSON data take only CSV, Avro or JSON files
		// (https://cloud.google.com/bigquery/docs/json-data#limitations), so
		// it is staged as STRING and parsed by the publish (bq.StagingSchema).
		w.i32(6, ctUTF8)
		logical(ltString, func() {})
	case schema.Numeric:
		w.i32(6, ctDecimal)
		w.i32(7, schema.NumericScale)
		w.i32(8, 38)
		logical(ltDecimal, func() {
			w.i32(1, schema.NumericScale)
			w.i32(2, 38)
		})
	case schema.Date:
		w.i32(6, ctDate)
		logical(ltDate, func() {})
	case schema.Timestamp, schema.Datetime:
		w.i32(6, ctTimestampMicros)
		logical(ltTimestamp, func() {
			w.boolean(1, l.col.Type == schema.Timestamp)
			unit()
		})
	case schema.Time:
		w.i32(6, ctTimeMicros)
		logical(ltTime, func() {
			w.boolean(1, false)
			unit()
		})
	}
	w.end()
}
