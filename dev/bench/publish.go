package main

import (
	"context"
	"fmt"
	"time"

	"github.com/pgbq/pgbq/dev/internal/publishcost"
	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
)

// publishCost is the bytes processed by the publish from staging of the
// big day, by the fidelity layer's count of on-demand bytes
// (internal/bqfidelity, billing.go). The loader publishes a closed day it
// read in one go by a load job, which processes no bytes; days too large
// for that, the current day and days after a load quota refusal go
// through staging and a MERGE, which this measures: the big day is synced
// by the loader into a fresh dataset through the layer, staged again in
// chunks, and published again by production's PublishDays, replacing
// itself, in a destination that holds two more days like it. It also
// reports the bound the docs give, staging plus the replaced partition
// (each read whole through the layer), which a publish that reads only its
// days stays within.
func publishCost(ctx context.Context, c e2eConfig, emulator string, l layout) (published, stagingBytes, replacedBytes int64, err error) {
	p, err := bqfidelity.Start(emulator, bqfidelity.Options{}) //nolint:contextcheck // the proxy lives until Close
	if err != nil {
		return 0, 0, 0, err
	}
	defer p.Close() //nolint:contextcheck // Close ends the proxy's own work
	raw := c
	raw.bqEndpoint = emulator
	raw.dataset = benchDataset + "_publish"
	if err := migrate(ctx, raw); err != nil {
		return 0, 0, 0, err
	}
	defer dropDataset(context.WithoutCancel(ctx), raw)
	proxied := raw
	proxied.bqEndpoint = p.Endpoint()
	day := l.day(l.bigDay)
	if _, err := runLoader(ctx, proxied, mainTable, day.Format(time.DateOnly)); err != nil {
		return 0, 0, 0, err
	}
	// Two more days like it make the destination three times the day, so
	// that a publish that reads the whole destination shows it. They are
	// written straight on the emulator: only the publish is measured.
	if err := copyDay(ctx, raw, day, 2); err != nil {
		return 0, 0, 0, fmt.Errorf("publish cost: %w", err)
	}
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: c.pgDSN}, pgsource.TableSpec{Table: mainTable, IDColumn: "id", TimestampColumn: "created_at"})
	if err != nil {
		return 0, 0, 0, err
	}
	defer src.Close()
	cfg := bq.Config{Project: c.bqProject, Dataset: proxied.dataset, Location: "US", Endpoint: proxied.bqEndpoint}.WithDefaults()
	client, err := bq.NewClient(ctx, cfg)
	if err != nil {
		return 0, 0, 0, err
	}
	defer client.Close()
	wh, err := bq.NewWarehouse(client, cfg, mainTable, src.Table())
	if err != nil {
		return 0, 0, 0, err
	}
	enc, err := parquetenc.New(src.Table())
	if err != nil {
		return 0, 0, 0, err
	}
	if err := publishcost.Stage(ctx, src, enc, wh, day, c.chunk); err != nil {
		return 0, 0, 0, fmt.Errorf("publish cost: stage %s: %w", day.Format(time.DateOnly), err)
	}
	filter := fmt.Sprintf("created_at >= TIMESTAMP '%s' AND created_at < TIMESTAMP '%s'", day.Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly))
	if stagingBytes, err = publishcost.Processed(ctx, client, "SELECT * FROM "+bq.Ref(cfg.Project, cfg.StagingDataset, wh.Staging(day))+" WHERE "+filter); err != nil {
		return 0, 0, 0, err
	}
	if replacedBytes, err = publishcost.Processed(ctx, client, "SELECT * FROM "+wh.DestRef()+" WHERE "+filter); err != nil {
		return 0, 0, 0, err
	}
	before := p.Stats().BytesProcessed["MERGE"]
	if err := wh.PublishDays(ctx, []time.Time{day}, nil); err != nil {
		return 0, 0, 0, fmt.Errorf("publish cost: %w", err)
	}
	return p.Stats().BytesProcessed["MERGE"] - before, stagingBytes, replacedBytes, nil
}

// copyDay writes n copies of day's rows into the n days after it, with
// new ids, on c's endpoint.
func copyDay(ctx context.Context, c e2eConfig, day time.Time, n int) error {
	client, err := bq.NewClient(ctx, bq.Config{Project: c.bqProject, Endpoint: c.bqEndpoint})
	if err != nil {
		return err
	}
	defer client.Close()
	dest := bq.Ref(c.bqProject, c.dataset, mainTable)
	sql := fmt.Sprintf("INSERT INTO %s SELECT x.* REPLACE (TIMESTAMP_ADD(x.created_at, INTERVAL k DAY) AS created_at, x.id + k * 1000000000 AS id) FROM %s AS x, UNNEST(GENERATE_ARRAY(1, %d)) AS k WHERE x.created_at >= TIMESTAMP '%s' AND x.created_at < TIMESTAMP '%s'",
		dest, dest, n, day.Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly))
	j, err := client.Query(sql).Run(ctx)
	if err != nil {
		return err
	}
	st, err := j.Wait(ctx)
	if err != nil {
		return err
	}
	return st.Err()
}
