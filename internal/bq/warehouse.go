package bq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/pgbq/pgbq/internal/schema"
)

// ErrSchema marks a destination whose schema does not match the source.
var ErrSchema = errors.New("destination schema mismatch")

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
	for _, c := range t.Columns {
		if !TableNameRE.MatchString(c.Name) {
			return nil, fmt.Errorf("%w: column %q is not a valid BigQuery column name", ErrSchema, c.Name)
		}
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
	meta := &bigquery.TableMetadata{
		Schema:           BigQuerySchema(w.table),
		TimePartitioning: &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: w.tsName()},
		Clustering:       &bigquery.Clustering{Fields: []string{w.idName()}},
		Description:      "Synced by pgbq from PostgreSQL.",
	}
	got, err := w.ensureTable(ctx, t, meta)
	if err != nil || got == nil || len(got.Schema) == len(meta.Schema) {
		return err
	}
	// DDL rather than a metadata patch: the emulator applies only DDL to
	// its tables, and BigQuery takes either (DDL uses no DML quota).
	// One statement a column: the emulator takes one ALTER per statement.
	for _, f := range meta.Schema[len(got.Schema):] {
		typ := ddlType(f.Type)
		if f.Repeated {
			typ = "ARRAY<" + typ + ">"
		}
		sql := fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", w.DestRef(), quote(f.Name), typ)
		if _, err := w.Query(ctx, sql); err != nil {
			return fmt.Errorf("add column %s to %s: %w", f.Name, t.TableID, err)
		}
	}
	return nil
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

// EnsureStaging creates the staging table for day. A staging table made
// before the source gained columns is dropped and made again: the date is
// then synced from its start, so none of its rows lacks the new columns.
func (w *Warehouse) EnsureStaging(ctx context.Context, day time.Time) error {
	t := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day))
	meta := &bigquery.TableMetadata{
		Schema: BigQuerySchema(w.table),
		// A staging table left behind (a date abandoned) goes away by
		// itself; losing one costs a re-sync of that date, never data.
		ExpirationTime: time.Now().Add(14 * 24 * time.Hour),
		Description:    "pgbq staging for one date; dropped after publish.",
	}
	got, err := w.ensureTable(ctx, t, meta)
	if err != nil || got == nil || len(got.Schema) == len(meta.Schema) {
		return err
	}
	if err := w.DropStaging(ctx, day); err != nil {
		return err
	}
	_, err = w.ensureTable(ctx, t, meta)
	return err
}

// ensureTable creates t, or returns its metadata when it exists with the
// wanted schema or a prefix of it (columns to add); other schemas are an
// ErrSchema.
func (w *Warehouse) ensureTable(ctx context.Context, t *bigquery.Table, meta *bigquery.TableMetadata) (*bigquery.TableMetadata, error) {
	got, err := t.Metadata(ctx)
	if err == nil {
		return got, checkSchema(t.TableID, got.Schema, meta.Schema)
	}
	if !IsStatus(err, http.StatusNotFound) {
		return nil, fmt.Errorf("read table %s: %w", t.TableID, err)
	}
	if err := t.Create(ctx, meta); err != nil && !IsStatus(err, http.StatusConflict) {
		return nil, fmt.Errorf("create table %s: %w", t.TableID, err)
	}
	return nil, nil
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

// Load appends one Parquet file to the staging table of day as one load
// job with the given id (deterministic, so a retried insert cannot start a
// second job). A load job is atomic: all rows land or none.
func (w *Warehouse) Load(ctx context.Context, day time.Time, jobID string, parquet []byte) error {
	src := bigquery.NewReaderSource(bytes.NewReader(parquet))
	src.SourceFormat = bigquery.Parquet
	// Parquet LISTs become REPEATED columns, not records of list.element.
	src.ParquetOptions = &bigquery.ParquetOptions{EnableListInference: true}
	l := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)).LoaderFrom(src)
	l.WriteDisposition = bigquery.WriteAppend
	l.CreateDisposition = bigquery.CreateNever
	l.JobID = jobID
	// One multipart request per load; the emulator cannot take the
	// resumable uploads the client switches to above 16 MiB.
	l.MediaOptions = []googleapi.MediaOption{googleapi.ChunkSize(0)}
	job, err := l.Run(ctx)
	if IsStatus(err, http.StatusConflict) {
		// Our own earlier insert of this very job: wait for it instead.
		job, err = w.Client.JobFromID(ctx, jobID)
	}
	if err == nil {
		err = wait(ctx, job)
	}
	if IsStatus(err, http.StatusNotFound) && !w.stagingExists(ctx, day) {
		return fmt.Errorf("load job %s: %w", jobID, ErrStagingGone)
	}
	if err != nil {
		return fmt.Errorf("load job %s: %w", jobID, err)
	}
	return nil
}

// ErrStagingGone means the staging table was dropped under a load: another
// loader finished or reset the date. The date's position must be read again.
var ErrStagingGone = errors.New("staging table is gone")

func (w *Warehouse) stagingExists(ctx context.Context, day time.Time) bool {
	_, err := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)).Metadata(ctx)
	return !IsStatus(err, http.StatusNotFound)
}

// wait waits for job and returns its error. A failed job's error is read
// from its status: the emulator answers Wait on a failed job with 404.
func wait(ctx context.Context, job *bigquery.Job) error {
	st, err := job.Wait(ctx)
	if err != nil {
		if st2, err2 := job.Status(ctx); err2 == nil && st2.Err() != nil {
			return st2.Err()
		}
		return err
	}
	return st.Err()
}

// Query runs sql as a job and returns its rows once it has succeeded.
// Errors come from the job's status, never from an empty result.
func (w *Warehouse) Query(ctx context.Context, sql string) (*bigquery.RowIterator, error) {
	return RunQuery(ctx, w.Client, sql)
}

// RunQuery runs sql as a query job and checks its status before reading.
func RunQuery(ctx context.Context, client *bigquery.Client, sql string) (*bigquery.RowIterator, error) {
	q := client.Query(sql)
	job, err := q.Run(ctx)
	if err != nil {
		return nil, err
	}
	if err := wait(ctx, job); err != nil {
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
	ts := quote(w.tsName())
	return fmt.Sprintf("%s >= %s AND %s < %s", ts, w.literal(from), ts, w.literal(to))
}

// StagedPosition is the keyset position of the last staged row of day, the
// truth about what has been staged; nil when nothing is.
func (w *Warehouse) StagedPosition(ctx context.Context, day time.Time) (*schema.Key, error) {
	sql := fmt.Sprintf("SELECT %s, %s FROM %s ORDER BY 1 DESC, 2 DESC LIMIT 1",
		quote(w.tsName()), quote(w.idName()), w.stagingRef(day))
	it, err := w.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("read staged position of %s: %w", w.Staging(day), err)
	}
	var row []bigquery.Value
	err = it.Next(&row)
	if errors.Is(err, iterator.Done) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read staged position of %s: %w", w.Staging(day), err)
	}
	var ts time.Time
	ok1 := true
	switch v := row[0].(type) {
	case time.Time:
		ts = v
	case civil.DateTime:
		ts = v.In(time.UTC)
	default:
		ok1 = false
	}
	id, ok2 := row[1].(int64)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("read staged position of %s: unexpected row %v", w.Staging(day), row)
	}
	return &schema.Key{Time: ts.UTC(), ID: id}, nil
}

func (w *Warehouse) stagingRef(day time.Time) string {
	return Ref(w.cfg.Project, w.cfg.StagingDataset, w.Staging(day))
}

// DestRef is the quoted destination table.
func (w *Warehouse) DestRef() string { return Ref(w.cfg.Project, w.cfg.Dataset, w.dest) }

// Publish replaces day in the destination with the staged rows,
// de-duplicated by id, in one transaction. Publishing again gives the same
// result, so concurrent or repeated publishes cannot duplicate a row.
func (w *Warehouse) Publish(ctx context.Context, day time.Time) error {
	cols := make([]string, len(w.table.Columns))
	for i, c := range w.table.Columns {
		cols[i] = quote(c.Name)
	}
	list := strings.Join(cols, ", ")
	bounds := w.dayBounds(day)
	sql := fmt.Sprintf(`BEGIN TRANSACTION;
DELETE FROM %[1]s WHERE %[2]s;
INSERT INTO %[1]s (%[3]s)
SELECT %[3]s FROM %[4]s WHERE %[2]s
QUALIFY ROW_NUMBER() OVER (PARTITION BY %[5]s ORDER BY %[5]s) = 1;
COMMIT TRANSACTION;`, w.DestRef(), bounds, list, w.stagingRef(day), quote(w.idName()))
	it, err := w.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("publish %s %s: %w", w.dest, day.Format(time.DateOnly), err)
	}
	_ = it
	return nil
}

// DayStats are the destination's figures for one day.
type DayStats struct {
	Rows, DistinctIDs int64
}

// CountDay counts the destination's rows (and distinct ids) of day.
func (w *Warehouse) CountDay(ctx context.Context, day time.Time) (DayStats, error) {
	sql := fmt.Sprintf("SELECT COUNT(*), COUNT(DISTINCT %s) FROM %s WHERE %s",
		quote(w.idName()), w.DestRef(), w.dayBounds(day))
	it, err := w.Query(ctx, sql)
	if err != nil {
		return DayStats{}, fmt.Errorf("count %s %s: %w", w.dest, day.Format(time.DateOnly), err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		// A count always has a row; none means the query failed unseen.
		return DayStats{}, fmt.Errorf("count %s %s: %w", w.dest, day.Format(time.DateOnly), err)
	}
	n, ok1 := row[0].(int64)
	d, ok2 := row[1].(int64)
	if !ok1 || !ok2 {
		return DayStats{}, fmt.Errorf("count %s %s: unexpected row %v", w.dest, day.Format(time.DateOnly), row)
	}
	return DayStats{Rows: n, DistinctIDs: d}, nil
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

// StagedStats are the distinct ids of the day in staging and the largest.
func (w *Warehouse) StagedStats(ctx context.Context, day time.Time) (distinct, maxID int64, err error) {
	sql := fmt.Sprintf("SELECT COUNT(DISTINCT %[1]s), COALESCE(MAX(%[1]s), 0) FROM %[2]s WHERE %[3]s",
		quote(w.idName()), w.stagingRef(day), w.dayBounds(day))
	it, err := w.Query(ctx, sql)
	if err != nil {
		return 0, 0, fmt.Errorf("count staged rows of %s: %w", w.Staging(day), err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		return 0, 0, fmt.Errorf("count staged rows of %s: %w", w.Staging(day), err)
	}
	d, ok1 := row[0].(int64)
	m, ok2 := row[1].(int64)
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("count staged rows of %s: unexpected row %v", w.Staging(day), row)
	}
	return d, m, nil
}

// DayFingerprints summarises each UTC day in [from, to) that has rows in
// the destination.
func (w *Warehouse) DayFingerprints(ctx context.Context, from, to time.Time) (map[civil.Date]schema.DayFingerprint, error) {
	id := quote(w.idName())
	sql := fmt.Sprintf("SELECT DATE(%s), COUNT(*), COUNT(DISTINCT %s), MIN(%s), MAX(%s), CAST(SUM(CAST(%s AS NUMERIC)) AS STRING) FROM %s WHERE %s GROUP BY 1",
		quote(w.tsName()), id, id, id, id, w.DestRef(), w.rangeBounds(from, to))
	it, err := w.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s by day: %w", w.dest, err)
	}
	out := map[civil.Date]schema.DayFingerprint{}
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("fingerprint %s by day: %w", w.dest, err)
		}
		d, ok := row[0].(civil.Date)
		n1, ok1 := row[1].(int64)
		n2, ok2 := row[2].(int64)
		n3, ok3 := row[3].(int64)
		n4, ok4 := row[4].(int64)
		sum, ok5 := row[5].(string)
		if !ok || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
			return nil, fmt.Errorf("fingerprint %s by day: unexpected row %v", w.dest, row)
		}
		out[d] = schema.DayFingerprint{Rows: n1, DistinctIDs: n2, MinID: n3, MaxID: n4, SumID: normalizeDecimal(sum)}
	}
}

// normalizeDecimal drops a fractional part of zeros ("12.000" -> "12").
func normalizeDecimal(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 && strings.Trim(s[i+1:], "0") == "" {
		return s[:i]
	}
	return s
}
