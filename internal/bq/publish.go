package bq

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/pgbq/pgbq/internal/schema"
)

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
	id := JobID("publishfile", day.Format("20060102"), w.dest, gen, first.Time.UnixMicro(), first.KeyString(), last.Time.UnixMicro(), last.KeyString(), rows)
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
