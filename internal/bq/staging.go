package bq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/pgbq/pgbq/internal/schema"
)

// StagingTables are the staging tables of one destination, for a process
// that holds no Warehouse (no source schema): `planner resync` drops the
// staging of the dates it re-opens, so that their next sync starts a new
// generation with nothing adopted from before.
type StagingTables struct {
	w Warehouse
}

// NewStagingTables are the staging tables of dest under cfg.
func NewStagingTables(client *bigquery.Client, cfg Config, dest string) StagingTables {
	return StagingTables{w: Warehouse{Client: client, cfg: cfg.WithDefaults(), dest: dest}}
}

// DropStaging deletes the staging table of day; a missing table is fine.
func (s StagingTables) DropStaging(ctx context.Context, day time.Time) error {
	return s.w.DropStaging(ctx, day)
}

// StagedWithOwnColumns reports whether the staging table of day holds
// exactly the columns w stages (names, types and modes, in order), by the
// table's metadata: the truth of what its rows hold, whatever the process
// that staged them knew of the source. A missing table is false.
func (w *Warehouse) StagedWithOwnColumns(ctx context.Context, day time.Time) (bool, error) {
	got, err := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)).Metadata(ctx)
	if IsStatus(err, http.StatusNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read table %s: %w", w.Staging(day), err)
	}
	want := StagingSchema(w.table)
	return len(got.Schema) == len(want) && checkSchema(w.Staging(day), got.Schema, want) == nil, nil
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

// Load appends one encoded chunk — the rows first..last of day, in
// keyset order — to the staging table of day (generation gen) as one load
// job. A load job is atomic: all rows land or none. Its id is derived from
// the chunk, so loading the same chunk again, after a lost answer or a
// crash, finds the first job instead of appending the rows twice.
func (w *Warehouse) Load(ctx context.Context, day time.Time, gen Generation, first, last schema.Key, rows int, data []byte) error {
	id := JobID("load", day.Format("20060102"), w.dest, gen, first.Time.UnixMicro(), first.KeyString(), last.Time.UnixMicro(), last.KeyString(), rows)
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

func (w *Warehouse) stagingRef(day time.Time) string {
	return Ref(w.cfg.Project, w.cfg.StagingDataset, w.Staging(day))
}

// Staged describes what the staging table of one day holds.
type Staged struct {
	Gen         Generation
	Rows        int64 // rows in staging
	DistinctIDs int64 // distinct ids among them
	MaxID       int64 // largest id staged, 0 when none
	// Hash is the sum of schema.KeyHash over the staged rows' keys: the
	// day's fingerprint hash when staging holds each key once.
	Hash int64
	Pos  *schema.Key // keyset position of the last staged row; nil when none
}

// DropStaging deletes the staging table of day; a missing table is fine.
func (w *Warehouse) DropStaging(ctx context.Context, day time.Time) error {
	err := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)).Delete(ctx)
	if err != nil && !IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("drop staging %s: %w", w.Staging(day), err)
	}
	return nil
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
	// The largest id is kept for an integer key only (last_max_id).
	maxID := "0"
	if w.table.KeyKind == schema.KeyInt {
		maxID = "COALESCE(MAX(" + quote(w.idName()) + "), 0)"
	}
	sql := fmt.Sprintf(`SELECT c.n, c.d, c.m, p.ts, p.id, c.h FROM
  (SELECT COUNT(*) AS n, COUNT(DISTINCT %[1]s) AS d, %[4]s AS m, IFNULL(SUM(%[6]s), 0) AS h FROM %[3]s) AS c
  LEFT JOIN (SELECT %[2]s AS ts, %[5]s AS id FROM %[3]s ORDER BY %[2]s DESC, %[1]s DESC LIMIT 1) AS p ON TRUE`,
		quote(w.idName()), quote(w.tsName()), w.stagingRef(day), maxID, w.keyCanon(""), w.keyHash(""))
	row, err := Row[[]bigquery.Value](w.Query(ctx, sql))
	if err != nil {
		return st, fmt.Errorf("read staged state of %s: %w", w.Staging(day), err)
	}
	if len(row) != 6 {
		return st, fmt.Errorf("read staged state of %s: unexpected row %v", w.Staging(day), row)
	}
	n, ok1 := row[0].(int64)
	d, ok2 := row[1].(int64)
	m, ok3 := row[2].(int64)
	h, ok4 := row[5].(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return st, fmt.Errorf("read staged state of %s: unexpected row %v", w.Staging(day), row)
	}
	st.Rows, st.DistinctIDs, st.MaxID, st.Hash = n, d, m, h
	if n == 0 {
		return st, nil
	}
	pos, ok := w.stagedKey(row[3], row[4])
	if !ok {
		return st, fmt.Errorf("read staged state of %s: unexpected row %v", w.Staging(day), row)
	}
	st.Pos = &pos
	return st, nil
}

// StagedCountUpTo counts the distinct ids staged for day at or before the
// keyset position pos.
func (w *Warehouse) StagedCountUpTo(ctx context.Context, day time.Time, pos schema.Key) (int64, error) {
	ts, id := quote(w.tsName()), quote(w.idName())
	at := w.microLiteral(pos.Time)
	key, err := keyLiteral(pos)
	if err != nil {
		return 0, fmt.Errorf("count staged rows of %s: %w", w.Staging(day), err)
	}
	sql := fmt.Sprintf("SELECT COUNT(DISTINCT %[2]s) AS ids FROM %[3]s WHERE %[1]s < %[4]s OR (%[1]s = %[4]s AND %[2]s <= %[5]s)",
		ts, id, w.stagingRef(day), at, key)
	c, err := Row[counts](w.Query(ctx, sql))
	if err != nil {
		return 0, fmt.Errorf("count staged rows of %s: %w", w.Staging(day), err)
	}
	return c.IDs, nil
}
