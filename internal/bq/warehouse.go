package bq

import (
	"bytes"
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
	"cloud.google.com/go/civil"
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

// Staging is the staging table's id for day.
func (w *Warehouse) Staging(day time.Time) string {
	return fmt.Sprintf("pgbq_stage_%s_%s", w.dest, day.Format("20060102"))
}

// partitioning is the destination's: one partition a UTC day of the
// timestamp column, clustered by id. Staging tables share it, so that a
// day moves from staging to the destination by copying one partition.
func (w *Warehouse) partitioning(meta *bigquery.TableMetadata) *bigquery.TableMetadata {
	meta.TimePartitioning = &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: w.tsName()}
	meta.Clustering = &bigquery.Clustering{Fields: []string{w.idName()}}
	return meta
}

// Generation identifies one incarnation of a staging table: its creation
// time. A staging table dropped and made again is a new generation, so job
// ids that include it can never adopt a job that wrote into the old one.
type Generation int64

// EnsureStaging creates the staging table for day and returns its
// generation. A staging table made before the source gained columns is
// dropped and made again: the date is then synced from its start, so none
// of its rows lacks the new columns.
func (w *Warehouse) EnsureStaging(ctx context.Context, day time.Time) (Generation, error) {
	gen, _, err := w.ensureStaging(ctx, day, false)
	return gen, err
}

// stagingMeta is what a staging table of day is created with.
func (w *Warehouse) stagingMeta() *bigquery.TableMetadata {
	return w.partitioning(&bigquery.TableMetadata{
		Schema: StagingSchema(w.table),
		// A staging table left behind (a date abandoned) goes away by
		// itself; losing one costs a re-sync of that date, never data.
		ExpirationTime: time.Now().Add(14 * 24 * time.Hour),
		Description:    "pgbq staging for one date; dropped after publish.",
	})
}

// ensureStaging is EnsureStaging; created reports that this call made the
// table (not a 409 from a retried or concurrent insert), so it was empty
// when made. createFirst: the table is most likely absent (a read just
// found none), so its creation is tried before a read of it.
func (w *Warehouse) ensureStaging(ctx context.Context, day time.Time, createFirst bool) (gen Generation, created bool, err error) {
	t := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day))
	meta := w.stagingMeta()
	var got *bigquery.TableMetadata
	if createFirst {
		err = t.Create(ctx, meta)
		switch {
		case err == nil:
			created = true
		case IsStatus(err, http.StatusConflict): // made meanwhile: read it below
			err = nil
		default:
			return 0, false, fmt.Errorf("create table %s: %w", t.TableID, err)
		}
	}
	if !created {
		got, created, err = w.ensureTable(ctx, t, meta)
	}
	// A staging table of other columns (made before the source gained
	// some, or by a pgbq that staged JSON as JSON) is made again.
	if got != nil && (err == nil && len(got.Schema) != len(meta.Schema) || errors.Is(err, ErrSchema)) {
		if err := w.DropStaging(ctx, day); err != nil {
			return 0, false, err
		}
		got, created, err = w.ensureTable(ctx, t, meta)
	}
	if err != nil {
		return 0, false, err
	}
	if got == nil { // just created: read what BigQuery recorded
		if got, err = t.Metadata(ctx); err != nil {
			return 0, false, fmt.Errorf("read table %s: %w", t.TableID, err)
		}
	}
	return Generation(got.CreationTime.UnixMicro()), created, nil
}

// OpenStaging ensures the staging table of day and reads what it holds
// (StagedState); it follows an ExistingStaged that found none, so it
// tries to create the table first. A table this call created is empty and
// is not read: on BigQuery every read is a query job's latency (seconds).
func (w *Warehouse) OpenStaging(ctx context.Context, day time.Time) (Staged, error) {
	gen, created, err := w.ensureStaging(ctx, day, true)
	if err != nil || created {
		return Staged{Gen: gen}, err
	}
	return w.StagedState(ctx, day, gen)
}

// ExistingStaged reads what the staging table of day holds if it exists
// with the current schema, and creates nothing (ok false otherwise: use
// OpenStaging). It lets a loader read staging while it reads other state,
// before it knows whether the date needs a staging table at all.
func (w *Warehouse) ExistingStaged(ctx context.Context, day time.Time) (st Staged, ok bool, err error) {
	got, err := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)).Metadata(ctx)
	if IsStatus(err, http.StatusNotFound) {
		return Staged{}, false, nil
	}
	if err != nil {
		return Staged{}, false, fmt.Errorf("read table %s: %w", w.Staging(day), err)
	}
	want := w.stagingMeta().Schema
	if len(got.Schema) != len(want) || checkSchema(w.Staging(day), got.Schema, want) != nil {
		return Staged{}, false, nil
	}
	st, err = w.StagedState(ctx, day, Generation(got.CreationTime.UnixMicro()))
	return st, err == nil, err
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

// Load appends one encoded chunk — the rows first..last of day, in
// keyset order — to the staging table of day (generation gen) as one load
// job. A load job is atomic: all rows land or none. Its id is derived from
// the chunk, so loading the same chunk again, after a lost answer or a
// crash, finds the first job instead of appending the rows twice.
func (w *Warehouse) Load(ctx context.Context, day time.Time, gen Generation, first, last schema.Key, rows int, data []byte) error {
	id := JobID("load", day.Format("20060102"), w.dest, gen, first.Time.UnixMicro(), first.ID, last.Time.UnixMicro(), last.ID, rows)
	_, err := runJob(ctx, w.Client, id, func(ctx context.Context, id string) (*bigquery.Job, error) {
		return w.parquetLoader(w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)), StagingSchema(w.table), id, data, bigquery.WriteAppend).Run(ctx)
	})
	if err != nil && notFound(err, w.Staging(day)) && !w.stagingExists(ctx, day) {
		return fmt.Errorf("load %s: %w", id, ErrStagingGone)
	}
	return err
}

// parquetLoader is the load job id of the Parquet file data into the
// existing table t of schema ts, uploaded in the request. The job names
// the table's schema: without one BigQuery types each column from the
// file by its conversion table, where a TIMESTAMP(MICROS) column becomes
// TIMESTAMP whatever isAdjustedToUTC says, and a DATETIME column of the
// table then refuses it (https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-parquet#parquet_conversions);
// Google's Python client sends the schema with every Parquet load too.
func (w *Warehouse) parquetLoader(t *bigquery.Table, ts bigquery.Schema, id string, data []byte, write bigquery.TableWriteDisposition) *bigquery.Loader {
	src := bigquery.NewReaderSource(bytes.NewReader(data))
	src.SourceFormat = bigquery.Parquet
	src.Schema = ts
	// Parquet LISTs become REPEATED columns, not records of list.element.
	src.ParquetOptions = &bigquery.ParquetOptions{EnableListInference: true}
	l := t.LoaderFrom(src)
	l.WriteDisposition = write
	l.CreateDisposition = bigquery.CreateNever
	l.JobID = id
	l.MediaOptions = w.cfg.mediaOptions()
	return l
}

// PublishFile replaces day in the destination with the rows of data —
// every row of the day, first..last in keyset order, each id once, read in
// one go while they were staged into generation gen — as one load job
// writing the day's partition decorator with WRITE_TRUNCATE: the
// partition is replaced atomically, and every row must belong to the day
// or the job fails (https://cloud.google.com/bigquery/docs/managing-partitioned-table-data,
// https://cloud.google.com/bigquery/docs/load-data-partitioned-tables).
// It is one of the destination's table writes, which BigQuery refuses
// beyond 5 per 10 s (TableWritesPer10s), and one of its 1,500 load jobs a
// day (https://cloud.google.com/bigquery/quotas#load_jobs); the caller
// keeps to both (see pgcoord.Coord.PublishAlone). The id is derived from what
// the file holds, so a retry adopts the job through 409. started, if
// set, is called once the job is inserted. Its statistics say how many
// rows it wrote.
func (w *Warehouse) PublishFile(ctx context.Context, day time.Time, gen Generation, first, last schema.Key, rows int, data []byte, started func()) (int64, error) {
	part := w.dest + "$" + day.Format("20060102")
	if !w.ByLoad(day) {
		return 0, fmt.Errorf("publish %s by load: the table has a JSON column or the day has no partition of its own: publish it from staging", part)
	}
	id := JobID("publishfile", day.Format("20060102"), w.dest, gen, first.Time.UnixMicro(), first.ID, last.Time.UnixMicro(), last.ID, rows)
	job, err := runJobPolled(ctx, w.Client, id, 250*time.Millisecond, func(ctx context.Context, id string) (*bigquery.Job, error) {
		l := w.parquetLoader(w.Client.Dataset(w.cfg.Dataset).Table(part), BigQuerySchema(w.table), id, data, bigquery.WriteTruncate)
		l.Labels = w.publishLabels([]time.Time{day}) // found by the fence (fence.go)
		j, err := l.Run(ctx)
		if err == nil && started != nil {
			started()
		}
		return j, err
	})
	if err != nil {
		return 0, fmt.Errorf("publish %s by load: %w", part, err)
	}
	st, ok := job.LastStatus().Statistics.Details.(*bigquery.LoadStatistics)
	if !ok {
		return 0, fmt.Errorf("publish %s by load: job %s has no load statistics", part, job.ID())
	}
	return st.OutputRows, nil
}

// StagingRows reads the staging table of day's generation and row count
// from its metadata (tables.get: no job, so none of a job's latency).
// BigQuery's numRows counts every row but those in the streaming buffer
// (https://cloud.google.com/bigquery/docs/reference/rest/v2/tables, field
// numRows); staging tables only ever take load jobs, so it counts them
// all. A missing table is ErrStagingGone.
func (w *Warehouse) StagingRows(ctx context.Context, day time.Time) (Generation, int64, error) {
	got, err := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)).Metadata(ctx)
	if IsStatus(err, http.StatusNotFound) {
		return 0, 0, fmt.Errorf("read table %s: %w", w.Staging(day), ErrStagingGone)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read table %s: %w", w.Staging(day), err)
	}
	return Generation(got.CreationTime.UnixMicro()), int64(got.NumRows), nil
}

// ErrStagingGone means the staging table was dropped under a load: another
// loader finished or reset the date. The date's position must be read again.
var ErrStagingGone = errors.New("staging table is gone")

func (w *Warehouse) stagingExists(ctx context.Context, day time.Time) bool {
	_, err := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)).Metadata(ctx)
	return !IsStatus(err, http.StatusNotFound)
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

// stagedKey reads a keyset position from a row's timestamp and id values.
func stagedKey(tsv, idv bigquery.Value) (schema.Key, bool) {
	var ts time.Time
	switch v := tsv.(type) {
	case time.Time:
		ts = v
	case civil.DateTime:
		ts = v.In(time.UTC)
	default:
		return schema.Key{}, false
	}
	id, ok := idv.(int64)
	return schema.Key{Time: ts.UTC(), ID: id}, ok
}

func (w *Warehouse) stagingRef(day time.Time) string {
	return Ref(w.cfg.Project, w.cfg.StagingDataset, w.Staging(day))
}

// DestRef is the quoted destination table.
func (w *Warehouse) DestRef() string { return Ref(w.cfg.Project, w.cfg.Dataset, w.dest) }

// Staged describes what the staging table of one day holds.
type Staged struct {
	Gen         Generation
	Rows        int64       // rows in staging
	DistinctIDs int64       // distinct ids among them
	MaxID       int64       // largest id staged, 0 when none
	Pos         *schema.Key // keyset position of the last staged row; nil when none
}

// PublishDays replaces each of days in the destination with its staged
// rows, each id once, in one MERGE statement: every destination row of
// those days is deleted and the staged rows inserted, atomically (readers
// see all the old days or all the new ones, never half). A MERGE is one
// DML statement, so publishing many days costs one of the table's writes,
// where a copy job per day costs one each; BigQuery allows 5 writes per
// table per 10 s and 1,000 copy jobs per table per day
// (https://cloud.google.com/bigquery/quotas#standard_tables), which bound
// a back-fill of many small days, whatever the number of loaders. DML
// statements outside a transaction never conflict with each other: they
// queue (https://cloud.google.com/bigquery/docs/data-manipulation-language#update_delete_merge_dml_concurrency).
// Publishing the same staging again gives the same days, so a repeated or
// concurrent publish cannot duplicate a row. The statement reads staging
// when it runs; staging only grows within a generation, so a publish that
// runs late writes at least what it was started for. The job id is fresh
// for each call (a re-run is harmless); the client's own re-sends of
// jobs.insert meet 409 and adopt the job. started, if set, is called once
// the job is inserted. The job is polled every quarter second: every
// loader of the table waits on the publishes, one or two at a time, so
// each moment it ends unseen is a moment they all lose, for a few jobs.get
// calls a second per table.
func (w *Warehouse) PublishDays(ctx context.Context, days []time.Time, started func()) error {
	if len(days) == 0 {
		return nil
	}
	cols := make([]string, len(w.table.Columns))
	vals := make([]string, len(w.table.Columns))
	for i, c := range w.table.Columns {
		cols[i] = quote(c.Name)
		vals[i] = "S." + quote(c.Name)
	}
	sources := make([]string, len(days))
	replaced := make([]string, len(days))
	labels := make([]any, 0, len(days)+2)
	for i, day := range days {
		sources[i] = w.dedupSQL(day)
		replaced[i] = "(" + w.boundsOf("T.", day) + ")"
		labels = append(labels, day.Format("20060102"))
	}
	// ON FALSE: no staged row matches a destination row, so every staged
	// row is inserted and every destination row of the replaced days
	// deleted. With WHEN NOT MATCHED and WHEN NOT MATCHED BY SOURCE
	// together BigQuery prunes the target only when the merge condition is
	// a constant false predicate; then it reads only the partitions the
	// NOT MATCHED BY SOURCE filter names
	// (https://cloud.google.com/bigquery/docs/using-dml-with-partitioned-tables#pruning_partitions_when_using_a_merge_statement).
	// Any other condition is a full outer join over the whole destination.
	sql := fmt.Sprintf("MERGE %s AS T USING (\n%s\n) AS S ON FALSE\nWHEN NOT MATCHED BY SOURCE AND (%s) THEN DELETE\nWHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)",
		w.DestRef(), strings.Join(sources, "\nUNION ALL\n"),
		strings.Join(replaced, " OR "), strings.Join(cols, ", "), strings.Join(vals, ", "))
	labels = append(labels, w.dest, time.Now().UnixNano())
	id := JobID("publish", days[0].Format("20060102"), labels...)
	_, err := runJobPolled(ctx, w.Client, id, 250*time.Millisecond, func(ctx context.Context, id string) (*bigquery.Job, error) {
		q := w.Client.Query(sql)
		q.JobID = id
		q.Labels = w.publishLabels(days) // found by the fence (fence.go)
		j, err := q.Run(ctx)
		if err == nil && started != nil {
			started()
		}
		return j, err
	})
	if err != nil {
		return fmt.Errorf("publish %s %s (%d days): %w", w.dest, days[0].Format(time.DateOnly), len(days), err)
	}
	return nil
}

// MissingStaging returns those of days whose staging table does not exist
// (dropped by another loader since they were staged).
func (w *Warehouse) MissingStaging(ctx context.Context, days []time.Time) []time.Time {
	var gone []time.Time
	for _, d := range days {
		if !w.stagingExists(ctx, d) {
			gone = append(gone, d)
		}
	}
	return gone
}

// stagedValue is the destination's value of column c from its staged
// value v: JSON is staged as its text (StagingSchema) and parsed here.
// PARSE_JSON's default wide_number_mode 'exact' fails on a number JSON
// cannot hold without loss; the loader refuses such numbers before they
// are staged (pgsource), so no publish of many days fails for one value.
// https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#parse_json
func stagedValue(c schema.Column, v string) string {
	switch {
	case c.Type != schema.JSON:
		return v
	case c.Repeated:
		return "ARRAY(SELECT PARSE_JSON(e) FROM UNNEST(" + v + ") AS e WITH OFFSET AS o ORDER BY o)"
	default:
		return "PARSE_JSON(" + v + ")"
	}
}

// dedupSQL selects the staged rows of day, each id once, as the
// destination's values (stagedValue).
func (w *Warehouse) dedupSQL(day time.Time) string {
	cols := make([]string, len(w.table.Columns))
	for i, c := range w.table.Columns {
		cols[i] = quote(c.Name)
		if c.Type == schema.JSON {
			cols[i] = stagedValue(c, quote(c.Name)) + " AS " + quote(c.Name)
		}
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s QUALIFY ROW_NUMBER() OVER (PARTITION BY %s ORDER BY %s) = 1",
		strings.Join(cols, ", "), w.stagingRef(day), w.dayBounds(day), quote(w.idName()), quote(w.tsName()))
}

// DayStats are the destination's figures for one day.
type DayStats struct {
	Rows, DistinctIDs int64
}

// CountDay counts the destination's rows (and distinct ids) of day.
func (w *Warehouse) CountDay(ctx context.Context, day time.Time) (DayStats, error) {
	sql := fmt.Sprintf("SELECT COUNT(*) AS n, COUNT(DISTINCT %s) AS ids FROM %s WHERE %s",
		quote(w.idName()), w.DestRef(), w.dayBounds(day))
	// A count always has a row; none means the query failed unseen.
	c, err := Row[counts](w.Query(ctx, sql))
	if err != nil {
		return DayStats{}, fmt.Errorf("count %s %s: %w", w.dest, day.Format(time.DateOnly), err)
	}
	return DayStats{Rows: c.N, DistinctIDs: c.IDs}, nil
}

// counts is the row of a COUNT(*) AS n, COUNT(DISTINCT id) AS ids, MAX(id)
// AS max_id query (columns not selected stay zero).
type counts struct {
	N     int64 `bigquery:"n"`
	IDs   int64 `bigquery:"ids"`
	MaxID int64 `bigquery:"max_id"`
}

// RepeatedIDs counts the ids the destination holds more than once. A
// published day never holds an id twice, so these are ids in more than
// one day: the source's id column is not unique across days. The query
// reads only the id column.
func (w *Warehouse) RepeatedIDs(ctx context.Context) (int64, error) {
	sql := fmt.Sprintf("SELECT COUNT(*) FROM (SELECT %s FROM %s GROUP BY 1 HAVING COUNT(*) > 1)", quote(w.idName()), w.DestRef())
	it, err := w.Query(ctx, sql)
	if err != nil {
		return 0, fmt.Errorf("count repeated ids of %s: %w", w.dest, err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		return 0, fmt.Errorf("count repeated ids of %s: %w", w.dest, err)
	}
	n, ok := row[0].(int64)
	if !ok {
		return 0, fmt.Errorf("count repeated ids of %s: unexpected row %v", w.dest, row)
	}
	return n, nil
}

// DropStaging deletes the staging table of day; a missing table is fine.
func (w *Warehouse) DropStaging(ctx context.Context, day time.Time) error {
	err := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)).Delete(ctx)
	if err != nil && !IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("drop staging %s: %w", w.Staging(day), err)
	}
	return nil
}

// IsStatus reports whether err is a BigQuery API error with HTTP status code.
func IsStatus(err error, code int) bool {
	var e *googleapi.Error
	return errors.As(err, &e) && e.Code == code
}

// StagedState reads what the staging table of day (generation gen) holds.
// A staging table dropped under it (another loader finished or reset the
// date) is ErrStagingGone.
func (w *Warehouse) StagedState(ctx context.Context, day time.Time, gen Generation) (Staged, error) {
	st, err := w.stagedState(ctx, day, gen)
	if err != nil && notFound(err, w.Staging(day)) && !w.stagingExists(ctx, day) {
		return st, fmt.Errorf("%w: %w", ErrStagingGone, err)
	}
	return st, err
}

func (w *Warehouse) stagedState(ctx context.Context, day time.Time, gen Generation) (Staged, error) {
	st := Staged{Gen: gen}
	// One query, so one job's latency and one snapshot: the counts and the
	// position of the last staged row (the truth about what has been
	// staged; none when nothing is) describe the same rows.
	sql := fmt.Sprintf(`SELECT c.n, c.d, c.m, p.ts, p.id FROM
  (SELECT COUNT(*) AS n, COUNT(DISTINCT %[1]s) AS d, COALESCE(MAX(%[1]s), 0) AS m FROM %[3]s) AS c
  LEFT JOIN (SELECT %[2]s AS ts, %[1]s AS id FROM %[3]s ORDER BY 1 DESC, 2 DESC LIMIT 1) AS p ON TRUE`,
		quote(w.idName()), quote(w.tsName()), w.stagingRef(day))
	row, err := Row[[]bigquery.Value](w.Query(ctx, sql))
	if err != nil {
		return st, fmt.Errorf("read staged state of %s: %w", w.Staging(day), err)
	}
	if len(row) != 5 {
		return st, fmt.Errorf("read staged state of %s: unexpected row %v", w.Staging(day), row)
	}
	n, ok1 := row[0].(int64)
	d, ok2 := row[1].(int64)
	m, ok3 := row[2].(int64)
	if !ok1 || !ok2 || !ok3 {
		return st, fmt.Errorf("read staged state of %s: unexpected row %v", w.Staging(day), row)
	}
	st.Rows, st.DistinctIDs, st.MaxID = n, d, m
	if n == 0 {
		return st, nil
	}
	pos, ok := stagedKey(row[3], row[4])
	if !ok {
		return st, fmt.Errorf("read staged state of %s: unexpected row %v", w.Staging(day), row)
	}
	st.Pos = &pos
	return st, nil
}

// DayFingerprints summarises each UTC day in [from, to) that has rows in
// the destination.
func (w *Warehouse) DayFingerprints(ctx context.Context, from, to time.Time) (map[civil.Date]schema.DayFingerprint, error) {
	id := quote(w.idName())
	sql := fmt.Sprintf("SELECT DATE(%s) AS day, COUNT(*) AS n, COUNT(DISTINCT %s) AS ids, MIN(%s) AS min_id, MAX(%s) AS max_id, CAST(SUM(CAST(%s AS NUMERIC)) AS STRING) AS sum_id FROM %s WHERE %s GROUP BY 1",
		quote(w.tsName()), id, id, id, id, w.DestRef(), w.rangeBounds(from, to))
	type dayRow struct {
		Day   civil.Date `bigquery:"day"`
		N     int64      `bigquery:"n"`
		IDs   int64      `bigquery:"ids"`
		MinID int64      `bigquery:"min_id"`
		MaxID int64      `bigquery:"max_id"`
		SumID string     `bigquery:"sum_id"`
	}
	rows, err := Rows[dayRow](w.Query(ctx, sql))
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s by day: %w", w.dest, err)
	}
	out := map[civil.Date]schema.DayFingerprint{}
	for _, r := range rows {
		out[r.Day] = schema.DayFingerprint{Rows: r.N, DistinctIDs: r.IDs, MinID: r.MinID, MaxID: r.MaxID, SumID: normalizeDecimal(r.SumID)}
	}
	return out, nil
}

// normalizeDecimal drops a fractional part of zeros ("12.000" -> "12").
func normalizeDecimal(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 && strings.Trim(s[i+1:], "0") == "" {
		return s[:i]
	}
	return s
}

// StagedCountUpTo counts the distinct ids staged for day at or before the
// keyset position pos.
func (w *Warehouse) StagedCountUpTo(ctx context.Context, day time.Time, pos schema.Key) (int64, error) {
	ts, id := quote(w.tsName()), quote(w.idName())
	at := w.microLiteral(pos.Time)
	sql := fmt.Sprintf("SELECT COUNT(DISTINCT %[2]s) AS ids FROM %[3]s WHERE %[1]s < %[4]s OR (%[1]s = %[4]s AND %[2]s <= %[5]d)",
		ts, id, w.stagingRef(day), at, pos.ID)
	c, err := Row[counts](w.Query(ctx, sql))
	if err != nil {
		return 0, fmt.Errorf("count staged rows of %s: %w", w.Staging(day), err)
	}
	return c.IDs, nil
}

// microLiteral is literal to the microsecond, for keyset positions.
func (w *Warehouse) microLiteral(t time.Time) string {
	if w.table.Columns[w.table.TimestampIndex].Type == schema.Datetime {
		return "DATETIME '" + t.UTC().Format("2006-01-02 15:04:05.000000") + "'"
	}
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05.000000+00") + "'"
}
