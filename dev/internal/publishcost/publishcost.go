// Package publishcost holds what the dev tools that measure a publish's
// cost share (`make bench --only-publish-bytes`, `make cloud-check`): a
// day staged by production's Load, and the bytes a query processes.
package publishcost

import (
	"bytes"
	"context"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/schema"
)

// Stage loads day from src into a new staging generation of wh, chunk rows
// a load, by production's Load. The staging table's 5 loads per 10 s are
// waited out, as the loader does.
func Stage(ctx context.Context, src *pgsource.Source, enc *parquetenc.Encoder, wh *bq.Warehouse, day time.Time, chunk int) error {
	gen, err := wh.EnsureStaging(ctx, day)
	if err != nil {
		return err
	}
	var after *schema.Key
	for {
		b := new(schema.Batch)
		if err := src.ReadChunk(ctx, day, day.AddDate(0, 0, 1), after, chunk, b); err != nil {
			return err
		}
		if b.Rows == 0 {
			return nil
		}
		var buf bytes.Buffer
		if err := enc.Encode(&buf, b); err != nil {
			return err
		}
		if err := retry.Do(ctx, func(ctx context.Context, _ int) error {
			return wh.Load(ctx, day, gen, b.First, b.Last, b.Rows, buf.Bytes())
		}); err != nil {
			return err
		}
		if b.Rows < chunk {
			return nil
		}
		last := b.Last
		after = &last
	}
}

// Processed runs sql and returns its statistics.totalBytesProcessed.
func Processed(ctx context.Context, client *bigquery.Client, sql string) (int64, error) {
	j, err := client.Query(sql).Run(ctx)
	if err != nil {
		return 0, err
	}
	st, err := j.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if st.Err() != nil {
		return 0, st.Err()
	}
	return st.Statistics.TotalBytesProcessed, nil
}
