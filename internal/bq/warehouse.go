package bq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"

	"github.com/pgbq/pgbq/internal/schema"
)

// ErrSchema marks a destination whose schema does not match the source.
var ErrSchema = errors.New("destination schema mismatch")

// ErrOwned marks a destination that pgbq made for another source table.
var ErrOwned = errors.New("destination belongs to another source table")

// SourceLabel is the destination's label that records which source table
// pgbq made it for: a hash of the source's name (label values allow only
// lowercase letters, digits, - and _), which the description spells out.
const SourceLabel = "pgbq_source"

// sourceLabel is SourceLabel's value for the source table named source.
func sourceLabel(source string) string {
	h := fnv.New64a()
	h.Write([]byte(source))
	return fmt.Sprintf("%016x", h.Sum64())
}

// sourceDescription is the destination's description; it names the source.
func sourceDescription(source string) string {
	return "Synced by pgbq from PostgreSQL table " + source + "."
}

// Warehouse is one synced table's BigQuery side.
type Warehouse struct {
	Client *bigquery.Client
	cfg    Config
	table  schema.Table
	dest   string // destination table id
}

// NewWarehouse checks that t can be held by BigQuery under the name dest.
func NewWarehouse(client *bigquery.Client, cfg Config, dest string, t schema.Table) (*Warehouse, error) {
	if !TableNameRE.MatchString(dest) {
		return nil, fmt.Errorf("%w: %q is not a valid BigQuery table name", ErrSchema, dest)
	}
	if err := CheckColumnNames(t); err != nil {
		return nil, err
	}
	return &Warehouse{Client: client, cfg: cfg.WithDefaults(), table: t, dest: dest}, nil
}

// BigQuerySchema is the destination schema for t.
func BigQuerySchema(t schema.Table) bigquery.Schema {
	s := make(bigquery.Schema, len(t.Columns))
	for i, c := range t.Columns {
		s[i] = &bigquery.FieldSchema{Name: c.Name, Type: fieldType(c.Type), Repeated: c.Repeated}
	}
	return s
}

// StagingSchema is the staging tables' schema for t: the destination's,
// with JSON columns as STRING. A batch load of JSON data must come from
// CSV, Avro or JSON files ("Other batch load formats are not supported",
// https://cloud.google.com/bigquery/docs/json-data#limitations), so JSON
// travels as its text in a Parquet STRING into a STRING column of
// staging, and the publish MERGE turns it into JSON with PARSE_JSON.
func StagingSchema(t schema.Table) bigquery.Schema {
	s := BigQuerySchema(t)
	for _, f := range s {
		if f.Type == bigquery.JSONFieldType {
			f.Type = bigquery.StringFieldType
		}
	}
	return s
}

// ByLoad reports whether day may be published by loading Parquet into the
// destination's decorator (PublishFile): not when the table has a JSON
// column (Parquet into JSON is not a documented load, see StagingSchema)
// and not for a day without a partition of its own (HasPartition).
func (w *Warehouse) ByLoad(day time.Time) bool {
	return !HasJSON(w.table) && HasPartition(day)
}

// HasJSON reports whether the table has a JSON column (or array of JSON):
// its days cannot be published by loading Parquet into the destination.
func HasJSON(t schema.Table) bool {
	for _, c := range t.Columns {
		if c.Type == schema.JSON {
			return true
		}
	}
	return false
}

func fieldType(t schema.Type) bigquery.FieldType {
	switch t {
	case schema.Int64:
		return bigquery.IntegerFieldType
	case schema.Float64:
		return bigquery.FloatFieldType
	case schema.Bool:
		return bigquery.BooleanFieldType
	case schema.String:
		return bigquery.StringFieldType
	case schema.Bytes:
		return bigquery.BytesFieldType
	case schema.JSON:
		return bigquery.JSONFieldType
	case schema.Numeric:
		return bigquery.NumericFieldType
	case schema.Date:
		return bigquery.DateFieldType
	case schema.Timestamp:
		return bigquery.TimestampFieldType
	case schema.Datetime:
		return bigquery.DateTimeFieldType
	case schema.Time:
		return bigquery.TimeFieldType
	}
	panic(fmt.Sprintf("bq: no BigQuery type for %v", t))
}

// EnsureDatasets creates the destination, staging and state datasets when
// missing (in deployments Terraform creates them).
func EnsureDatasets(ctx context.Context, client *bigquery.Client, cfg Config) error {
	cfg = cfg.WithDefaults()
	for _, ds := range []string{cfg.Dataset, cfg.StagingDataset, cfg.StateDataset} {
		// Look before creating: a least-privilege account that may use a
		// dataset Terraform made may not create datasets at all.
		_, err := client.Dataset(ds).Metadata(ctx)
		if err == nil {
			continue
		}
		if !IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("read dataset %s: %w", ds, err)
		}
		err = client.Dataset(ds).Create(ctx, &bigquery.DatasetMetadata{Location: cfg.Location})
		if err != nil && !IsStatus(err, http.StatusConflict) {
			return fmt.Errorf("create dataset %s: %w", ds, err)
		}
	}
	return nil
}

// EnsureDestination creates the destination table, partitioned by day on
// the timestamp column and clustered by id, or checks that the existing one
// has the source's columns. Columns the source has gained at its end are
// added (existing rows hold NULL in them); any other difference is an
// ErrSchema saying what differs.
func (w *Warehouse) EnsureDestination(ctx context.Context) error {
	t := w.Client.Dataset(w.cfg.Dataset).Table(w.dest)
	meta := w.partitioning(&bigquery.TableMetadata{
		Schema:      BigQuerySchema(w.table),
		Description: sourceDescription(w.table.Source),
		Labels:      map[string]string{SourceLabel: sourceLabel(w.table.Source)},
	})
	got, _, err := w.ensureTable(ctx, t, meta)
	if got != nil {
		// Whose table it is comes before how its columns differ.
		if err := w.claim(ctx, t, got, err == nil); err != nil {
			return err
		}
	}
	if err != nil || got == nil {
		return err
	}
	if len(got.Schema) == len(meta.Schema) {
		return nil
	}
	// One DDL statement for all added columns: BigQuery allows 5 table
	// metadata updates per 10 s per table, and the caller holds a lease so
	// that one loader, not every instance, applies the change.
	var adds []string
	for _, f := range meta.Schema[len(got.Schema):] {
		typ := ddlType(f.Type)
		if f.Repeated {
			typ = "ARRAY<" + typ + ">"
		}
		adds = append(adds, fmt.Sprintf("ADD COLUMN IF NOT EXISTS %s %s", quote(f.Name), typ))
	}
	sql := fmt.Sprintf("ALTER TABLE %s %s", w.DestRef(), strings.Join(adds, ", "))
	id := JobID("ddl", w.dest, sql)
	_, err = runJob(ctx, w.Client, id, func(ctx context.Context, id string) (*bigquery.Job, error) {
		q := w.Client.Query(sql)
		q.JobID = id
		return q.Run(ctx)
	})
	if err != nil {
		return fmt.Errorf("add columns to %s: %w", t.TableID, err)
	}
	return nil
}

// claim checks that the existing destination got was made for this
// source table: two source tables feeding one destination would mix their
// rows and columns. A destination without the label (made by an older
// pgbq, or by hand) is claimed by setting it, when adopt says its schema
// fits.
func (w *Warehouse) claim(ctx context.Context, t *bigquery.Table, got *bigquery.TableMetadata, adopt bool) error {
	want := sourceLabel(w.table.Source)
	if err := w.owner(got); err != nil {
		return err
	}
	if _, ok := got.Labels[SourceLabel]; ok || !adopt {
		return nil
	}
	var upd bigquery.TableMetadataToUpdate
	upd.SetLabel(SourceLabel, want)
	if got.Description == "" || strings.HasPrefix(got.Description, "Synced by pgbq") {
		upd.Description = sourceDescription(w.table.Source)
	}
	if _, err := t.Update(ctx, upd, got.ETag); err != nil {
		return fmt.Errorf("label table %s with its source: %w", t.TableID, err)
	}
	return nil
}

// owner fails with ErrOwned when got was made for another source table.
func (w *Warehouse) owner(got *bigquery.TableMetadata) error {
	if have, ok := got.Labels[SourceLabel]; ok && have != sourceLabel(w.table.Source) {
		return fmt.Errorf("%w: BigQuery table %s is the destination of another source table (its description: %q), not of %s: "+
			"set dest_table in SYNC_TABLES (SYNC_DEST_TABLE for SYNC_TABLE) to another BigQuery table name",
			ErrOwned, w.DestRef(), got.Description, w.table.Source)
	}
	return nil
}

// CompareDestination runs the checks EnsureDestination runs on an existing
// destination — its owner, its columns against the source's — without
// changing anything; a destination not made yet passes.
func (w *Warehouse) CompareDestination(ctx context.Context) error {
	t := w.Client.Dataset(w.cfg.Dataset).Table(w.dest)
	got, err := t.Metadata(ctx)
	if IsStatus(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read table %s: %w", t.TableID, err)
	}
	if err := w.owner(got); err != nil {
		return err
	}
	return checkSchema(t.TableID, got.Schema, BigQuerySchema(w.table))
}

// ddlType is the GoogleSQL name of a field type.
func ddlType(t bigquery.FieldType) string {
	switch t {
	case bigquery.IntegerFieldType:
		return "INT64"
	case bigquery.FloatFieldType:
		return "FLOAT64"
	case bigquery.BooleanFieldType:
		return "BOOL"
	}
	return string(t)
}

// ensureTable creates t, or returns its metadata when it exists with the
// wanted schema or a prefix of it (columns to add); other schemas are an
// ErrSchema.
func (w *Warehouse) ensureTable(ctx context.Context, t *bigquery.Table, meta *bigquery.TableMetadata) (got *bigquery.TableMetadata, created bool, err error) {
	got, err = t.Metadata(ctx)
	if err == nil {
		return got, false, checkSchema(t.TableID, got.Schema, meta.Schema)
	}
	if !IsStatus(err, http.StatusNotFound) {
		return nil, false, fmt.Errorf("read table %s: %w", t.TableID, err)
	}
	err = t.Create(ctx, meta)
	if err != nil && !IsStatus(err, http.StatusConflict) {
		return nil, false, fmt.Errorf("create table %s: %w", t.TableID, err)
	}
	return nil, err == nil, nil
}

// checkSchema accepts got when it is want or a prefix of it.
func checkSchema(table string, got, want bigquery.Schema) error {
	var diffs []string
	for i, f := range got {
		if i >= len(want) {
			diffs = append(diffs, fmt.Sprintf("BigQuery has column %q (%s) that the source lacks", f.Name, f.Type))
			continue
		}
		if !strings.EqualFold(f.Name, want[i].Name) || f.Type != want[i].Type || f.Repeated != want[i].Repeated {
			diffs = append(diffs, fmt.Sprintf("column %d is %q %s in BigQuery but %q %s in the source", i+1, f.Name, f.Type, want[i].Name, want[i].Type))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: table %s: %s. A column was dropped, renamed or retyped in PostgreSQL: restore it, "+
			"or point SYNC_DEST_TABLE at a new BigQuery table and sync from the start", ErrSchema, table, strings.Join(diffs, "; "))
	}
	return nil
}

// WithTable is w for a changed source table (same destination).
func (w *Warehouse) WithTable(t schema.Table) (*Warehouse, error) {
	return NewWarehouse(w.Client, w.cfg, w.dest, t)
}

// Query runs sql as a job and returns its rows once it has succeeded.
// Errors come from the job's status, never from an empty result.
func (w *Warehouse) Query(ctx context.Context, sql string) (*bigquery.RowIterator, error) {
	return RunQuery(ctx, w.Client, sql)
}

// RunQuery runs sql as a query job and checks its status before reading.
// The job gets a fresh id, and a 409 on it — the Go client re-sending
// jobs.insert after a lost answer — adopts the job like any other.
func RunQuery(ctx context.Context, client *bigquery.Client, sql string) (*bigquery.RowIterator, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	job, err := runJob(ctx, client, "pgbq_read_"+hex.EncodeToString(b[:]), func(ctx context.Context, id string) (*bigquery.Job, error) {
		q := client.Query(sql)
		q.JobID = id
		return q.Run(ctx)
	})
	if err != nil {
		return nil, err
	}
	return job.Read(ctx)
}

// Ref quotes a table reference for SQL. Its parts are validated ids.
func Ref(project, dataset, table string) string {
	return "`" + project + "." + dataset + "." + table + "`"
}

func quote(name string) string { return "`" + name + "`" }

func (w *Warehouse) tsName() string { return w.table.Columns[w.table.TimestampIndex].Name }
func (w *Warehouse) idName() string { return w.table.Columns[w.table.IDIndex].Name }

// literal is a SQL literal of t for the timestamp column: TIMESTAMP for a
// TIMESTAMP column, DATETIME (UTC wall clock) for a DATETIME one.
func (w *Warehouse) literal(t time.Time) string {
	if w.table.Columns[w.table.TimestampIndex].Type == schema.Datetime {
		return "DATETIME '" + t.UTC().Format("2006-01-02 15:04:05") + "'"
	}
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05+00") + "'"
}

func (w *Warehouse) dayBounds(day time.Time) string {
	return w.rangeBounds(day, day.AddDate(0, 0, 1))
}

func (w *Warehouse) rangeBounds(from, to time.Time) string {
	return w.rangeOf("", from, to)
}

// boundsOf is dayBounds with the column qualified by alias ("T.").
func (w *Warehouse) boundsOf(alias string, day time.Time) string {
	return w.rangeOf(alias, day, day.AddDate(0, 0, 1))
}

func (w *Warehouse) rangeOf(alias string, from, to time.Time) string {
	ts := alias + quote(w.tsName())
	return fmt.Sprintf("%s >= %s AND %s < %s", ts, w.literal(from), ts, w.literal(to))
}

// DestRef is the quoted destination table.
func (w *Warehouse) DestRef() string { return Ref(w.cfg.Project, w.cfg.Dataset, w.dest) }

// IsStatus reports whether err is a BigQuery API error with HTTP status code.
func IsStatus(err error, code int) bool {
	var e *googleapi.Error
	return errors.As(err, &e) && e.Code == code
}

// microLiteral is literal to the microsecond, for keyset positions.
func (w *Warehouse) microLiteral(t time.Time) string {
	if w.table.Columns[w.table.TimestampIndex].Type == schema.Datetime {
		return "DATETIME '" + t.UTC().Format("2006-01-02 15:04:05.000000") + "'"
	}
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05.000000+00") + "'"
}
