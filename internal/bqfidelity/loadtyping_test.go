package bqfidelity

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/schema"
)

// typedFile is a one-row Parquet file as pgbq writes it: id INT64,
// ts TIMESTAMP(isAdjustedToUTC=true), local TIMESTAMP(isAdjustedToUTC=false),
// at TIME, doc (JSON text as STRING).
func typedFile(t *testing.T) []byte {
	t.Helper()
	tbl := schema.Table{Columns: []schema.Column{
		{Name: "id", Type: schema.Int64}, {Name: "ts", Type: schema.Timestamp},
		{Name: "local", Type: schema.Datetime}, {Name: "at", Type: schema.Time}, {Name: "doc", Type: schema.JSON},
	}, TimestampIndex: 1}
	enc, err := parquetenc.New(tbl)
	if err != nil {
		t.Fatal(err)
	}
	us := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC).UnixMicro()
	b := &schema.Batch{Rows: 1, Vectors: make([]schema.Vector, 5)}
	for i, v := range []int64{7, us, us, 3_600_000_000} {
		b.Vectors[i].Valid, b.Vectors[i].Ints = []bool{true}, []int64{v}
	}
	b.Vectors[4].Valid = []bool{true}
	b.Vectors[4].AppendBytes([]byte(`{"a": 1}`))
	var buf bytes.Buffer
	if err := enc.Encode(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var typedSchema = bigquery.Schema{
	{Name: "id", Type: bigquery.IntegerFieldType}, {Name: "ts", Type: bigquery.TimestampFieldType},
	{Name: "local", Type: bigquery.DateTimeFieldType}, {Name: "at", Type: bigquery.TimeFieldType},
	{Name: "doc", Type: bigquery.StringFieldType},
}

// loadFile loads data into table (a decorator allowed) through the proxy,
// with schema s if not nil, and returns the job's error reason and message.
func (f *fixture) loadFile(t *testing.T, table string, s bigquery.Schema, data []byte) (string, string) {
	t.Helper()
	return f.runJob(t, func() (*bigquery.Job, error) {
		src := bigquery.NewReaderSource(bytes.NewReader(data))
		src.SourceFormat = bigquery.Parquet
		src.Schema = s
		l := f.c.Dataset(f.dataset).Table(table).LoaderFrom(src)
		l.CreateDisposition = bigquery.CreateNever
		return l.Run(ctxT(t, time.Minute))
	})
}

func (f *fixture) typedTable(t *testing.T, id string, s bigquery.Schema) {
	t.Helper()
	md := &bigquery.TableMetadata{Schema: s, TimePartitioning: &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: "ts"}}
	if err := f.raw.Dataset(f.dataset).Table(id).Create(ctxT(t, 30*time.Second), md); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
}

// A Parquet load without a schema is typed by the conversion table: a
// TIMESTAMP(isAdjustedToUTC=false) column is TIMESTAMP, which a DATETIME
// column refuses; with the table's schema in the job it loads, exactly.
// A wrong type in the job's schema is refused too.
func TestParquetLoadTyping(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.typedTable(t, "dest", typedSchema)
	data := typedFile(t)

	reason, msg := f.loadFile(t, "dest", nil, data)
	if reason != "invalid" || !containsAll(msg, "Field local has changed type from DATETIME to TIMESTAMP") {
		t.Fatalf("load without a schema: %q %q; want invalid naming local DATETIME → TIMESTAMP", reason, msg)
	}
	if reason, msg := f.loadFile(t, "dest$20240301", nil, data); reason != "invalid" || !strings.Contains(msg, "Field local") {
		t.Fatalf("load without a schema to a decorator: %q %q; want invalid", reason, msg)
	}
	wrong := append(bigquery.Schema{}, typedSchema...)
	wrong[2] = &bigquery.FieldSchema{Name: "local", Type: bigquery.TimestampFieldType}
	if reason, msg := f.loadFile(t, "dest", wrong, data); reason != "invalid" || !strings.Contains(msg, "Field local has changed type from DATETIME to TIMESTAMP") {
		t.Fatalf("load with a schema that differs from the table: %q %q; want invalid", reason, msg)
	}
	wrong[2] = &bigquery.FieldSchema{Name: "local", Type: bigquery.DateTimeFieldType}
	wrong[3] = &bigquery.FieldSchema{Name: "at", Type: bigquery.DateTimeFieldType}
	if reason, msg := f.loadFile(t, "dest", wrong, data); reason != "invalid" || !strings.Contains(msg, "'at'") {
		t.Fatalf("load of a TIME column as DATETIME: %q %q; want invalid", reason, msg)
	}
	if f.count(t, "SELECT COUNT(*) FROM "+f.ref("dest")) != 0 {
		t.Fatal("a refused load left rows")
	}

	if reason, msg := f.loadFile(t, "dest$20240301", typedSchema, data); reason != "" {
		t.Fatalf("load with the table's schema: %s %s", reason, msg)
	}
	it, err := f.raw.Query("SELECT * EXCEPT (id, ts) FROM " + f.ref("dest")).Read(ctxT(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		t.Fatalf("the loaded row: %v", err)
	}
	want := []bigquery.Value{civil.DateTime{Date: civil.Date{Year: 2024, Month: 3, Day: 1}, Time: civil.Time{Hour: 10}}, civil.Time{Hour: 1}, `{"a": 1}`}
	if diff := cmp.Diff(want, row); diff != "" {
		t.Fatalf("loaded values differ (-want +got):\n%s", diff)
	}
}

// Parquet cannot fill a JSON column: "If you use a batch load job to ingest
// JSON data into a table, the source data must be in CSV, Avro, or JSON
// format." The layer refuses it with or without a schema in the job.
func TestParquetIntoJSONRefused(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	withJSON := append(bigquery.Schema{}, typedSchema...)
	withJSON[4] = &bigquery.FieldSchema{Name: "doc", Type: bigquery.JSONFieldType}
	f.typedTable(t, "dest", withJSON)
	data := typedFile(t)
	for _, s := range []bigquery.Schema{nil, withJSON, typedSchema} {
		if reason, msg := f.loadFile(t, "dest", s, data); reason != "invalid" || !strings.Contains(msg, "JSON") {
			t.Fatalf("Parquet into a JSON column (schema %v): %q %q; want invalid", s != nil, reason, msg)
		}
	}
}

// Day partitions cover 1960-01-01..2159-12-31: a decorator for another day
// is refused.
func TestDecoratorOutsidePartitionRange(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	f.typedTable(t, "dest", typedSchema)
	data := typedFile(t)
	for _, d := range []string{"19591231", "21600101", "00010101"} {
		if reason, msg := f.loadFile(t, "dest$"+d, typedSchema, data); reason != "invalid" || !strings.Contains(msg, "1960-01-01") {
			t.Fatalf("load to dest$%s: %q %q; want invalid", d, reason, msg)
		}
	}
}
