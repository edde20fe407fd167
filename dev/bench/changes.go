package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/dev/internal/publishcost"
	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
)

// The cost of a change (docs/changes.md, "The cost model"): a year of an
// orders table, changesDays days of changesPerDay rows, in PostgreSQL and
// in a destination behind the fidelity layer, which counts the bytes each
// statement processes as on-demand pricing would. For each pattern —
// changes on the two newest days, changes scattered over the year — the
// same changes are brought to BigQuery two ways:
//   - replace the touched days (what pgbq does): every row of each touched
//     day read from PostgreSQL (pgsource, as the loader reads), staged,
//     and published by production's PublishDays (a MERGE … ON FALSE
//     replacing the days);
//   - upsert (the alternative, as dlt's merge does): only the changed rows
//     read (through the updated-at index) and merged by id into the
//     destination, the target pruned to the touched days' span.
const (
	changesTable   = "orders_changes"
	changesDays    = 365
	changesPerDay  = 400
	changesPerCase = 100
)

// changeCost is one pattern's figures for one way.
type changeCost struct {
	rowsRead       int64 // from PostgreSQL
	bytesProcessed int64 // by BigQuery's statements, on-demand count
	bytesWritten   int64 // partitions rewritten (the touched days' bytes)
	days           int
}

func (c changeCost) String() string {
	return fmt.Sprintf("days=%d rows_read=%d rows_read_per_change=%.0f bytes_processed=%d bytes_processed_per_change=%.0f bytes_written=%d",
		c.days, c.rowsRead, float64(c.rowsRead)/changesPerCase, c.bytesProcessed, float64(c.bytesProcessed)/changesPerCase, c.bytesWritten)
}

// changeCosts measures both patterns both ways and logs one line each.
func changeCosts(ctx context.Context, dsn, emulator, project string, chunk int) error {
	p, err := bqfidelity.Start(emulator, bqfidelity.Options{}) //nolint:contextcheck // the proxy lives until Close
	if err != nil {
		return err
	}
	defer p.Close() //nolint:contextcheck // Close ends the proxy's own work
	raw := e2eConfig{bqEndpoint: emulator, bqProject: project, dataset: benchDataset + "_changes"}
	if err := migrate(ctx, raw); err != nil {
		return err
	}
	defer dropDataset(context.WithoutCancel(ctx), raw)
	last := civil.DateOf(time.Now().UTC()).AddDays(-2)
	first := last.AddDays(-(changesDays - 1))
	if err := seedChanges(ctx, dsn, first); err != nil {
		return err
	}
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: dsn}, pgsource.TableSpec{Table: changesTable, IDColumn: "id", TimestampColumn: "created_at"})
	if err != nil {
		return err
	}
	defer src.Close()
	cfg := bq.Config{Project: project, Dataset: raw.dataset, Location: "US", Endpoint: p.Endpoint()}.WithDefaults()
	client, err := bq.NewClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	wh, err := bq.NewWarehouse(client, cfg, changesTable, src.Table())
	if err != nil {
		return err
	}
	if err := wh.EnsureDestination(ctx); err != nil {
		return err
	}
	// The destination's year, written on the emulator itself: only what
	// follows is measured.
	if err := fillDestination(ctx, raw, first); err != nil {
		return err
	}
	enc, err := parquetenc.New(src.Table())
	if err != nil {
		return err
	}
	ch, err := src.Changes(ctx, "updated_at")
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	patterns := []struct{ name, where string }{
		{"recent", fmt.Sprintf("created_at >= TIMESTAMPTZ '%s'", last.AddDays(-1))},
		{"scattered", fmt.Sprintf("id %% %d = 7", changesDays*changesPerDay/changesPerCase)},
	}
	for i, pat := range patterns {
		since, err := ch.Now(ctx)
		if err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf(`UPDATE %s SET status = 'changed %d', amount = amount + 1, updated_at = clock_timestamp()
WHERE id IN (SELECT id FROM %s WHERE %s ORDER BY id LIMIT %d)`, changesTable, i, changesTable, pat.where, changesPerCase)); err != nil {
			return err
		}
		days, _, err := ch.ChangedDays(ctx, since, 0)
		if err != nil {
			return err
		}
		if len(days) == 0 {
			return fmt.Errorf("%s: no changed day found", pat.name)
		}
		var touched []time.Time
		for d := range days {
			touched = append(touched, d.In(time.UTC))
		}
		sort.Slice(touched, func(a, b int) bool { return touched[a].Before(touched[b]) })
		replace, err := replaceDays(ctx, p, client, src, enc, wh, touched, chunk)
		if err != nil {
			return fmt.Errorf("%s: replace days: %w", pat.name, err)
		}
		upsert, err := upsertRows(ctx, p, client, raw, wh, touched, i)
		if err != nil {
			return fmt.Errorf("%s: upsert: %w", pat.name, err)
		}
		logf("changes: pattern=%s changes=%d way=replace_day %s", pat.name, changesPerCase, replace)
		logf("changes: pattern=%s changes=%d way=upsert %s", pat.name, changesPerCase, upsert)
	}
	return nil
}

// seedChanges creates the orders table: changesDays days from first of
// changesPerDay rows, with an updated-at column and its index.
func seedChanges(ctx context.Context, dsn string, first civil.Date) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	n := changesDays * changesPerDay
	_, err = conn.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s;
CREATE TABLE %[1]s (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, customer integer NOT NULL, status text NOT NULL,
  amount numeric(12,2), note text, updated_at timestamptz);
INSERT INTO %[1]s SELECT g, TIMESTAMPTZ '%[2]s 00:00:00+00' + (g - 1) * (interval '%[3]d days' / %[4]d),
  g %% 997, 'paid', (g %% 100000) / 100.0, 'order note ' || g, TIMESTAMPTZ '%[2]s 00:00:00+00' + (g - 1) * (interval '%[3]d days' / %[4]d)
FROM generate_series(1, %[4]d) g;
CREATE INDEX ON %[1]s (created_at, id);
CREATE INDEX ON %[1]s (updated_at);
ANALYZE %[1]s;`, changesTable, first, changesDays, n))
	return err
}

// fillDestination writes the same year into the destination on c's
// endpoint (the emulator, unmetered).
func fillDestination(ctx context.Context, c e2eConfig, first civil.Date) error {
	n := changesDays * changesPerDay
	sql := fmt.Sprintf(`INSERT INTO %s (id, created_at, customer, status, amount, note, updated_at)
SELECT g, TIMESTAMP_ADD(TIMESTAMP '%[2]s', INTERVAL DIV((g - 1) * %[3]d, %[4]d) SECOND), MOD(g, 997), 'paid',
  CAST(MOD(g, 100000) / 100 AS NUMERIC), CONCAT('order note ', CAST(g AS STRING)),
  TIMESTAMP_ADD(TIMESTAMP '%[2]s', INTERVAL DIV((g - 1) * %[3]d, %[4]d) SECOND)
FROM UNNEST(GENERATE_ARRAY(1, %[4]d)) AS g`, bq.Ref(c.bqProject, c.dataset, changesTable), first, changesDays*86400, n)
	return runSQL(ctx, c, sql)
}

func runSQL(ctx context.Context, c e2eConfig, sql string) error {
	client, err := bq.NewClient(ctx, bq.Config{Project: c.bqProject, Endpoint: c.bqEndpoint})
	if err != nil {
		return err
	}
	defer client.Close()
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

// replaceDays stages every touched day from PostgreSQL and publishes them
// by production's PublishDays, in batches of bq.PublishBatch days.
func replaceDays(ctx context.Context, p *bqfidelity.Proxy, client *bigquery.Client, src *pgsource.Source, enc *parquetenc.Encoder,
	wh *bq.Warehouse, touched []time.Time, chunk int) (changeCost, error) {
	c := changeCost{days: len(touched)}
	for _, day := range touched {
		n, err := src.CountDay(ctx, day)
		if err != nil {
			return c, err
		}
		c.rowsRead += n
		if err := publishcost.Stage(ctx, src, enc, wh, day, chunk); err != nil {
			return c, err
		}
		b, err := publishcost.Processed(ctx, client, "SELECT * FROM "+wh.DestRef()+" WHERE "+dayFilter("created_at", day))
		if err != nil {
			return c, err
		}
		c.bytesWritten += b
	}
	before := p.Stats().BytesProcessed["MERGE"]
	for i := 0; i < len(touched); i += bq.PublishBatch {
		batch := touched[i:min(i+bq.PublishBatch, len(touched))]
		if err := wh.PublishDays(ctx, batch, nil); err != nil {
			return c, err
		}
		// The pacing the loaders keep between batches (the table's
		// partition modifications per 10 s).
		time.Sleep(bq.PublishHold(len(batch)))
	}
	c.bytesProcessed = p.Stats().BytesProcessed["MERGE"] - before
	return c, nil
}

// upsertRows merges the changed rows by id into the destination, the
// target pruned to the span of the touched days. The changed rows' staging
// table is made on the emulator (unmetered: its load is free on BigQuery);
// PostgreSQL reads only those rows, through the updated-at index.
func upsertRows(ctx context.Context, p *bqfidelity.Proxy, client *bigquery.Client, raw e2eConfig, wh *bq.Warehouse, touched []time.Time, round int) (changeCost, error) {
	c := changeCost{days: len(touched), rowsRead: changesPerCase}
	stage := bq.Ref(raw.bqProject, raw.dataset, fmt.Sprintf("upsert_%d", round))
	dest := wh.DestRef()
	if err := runSQL(ctx, raw, fmt.Sprintf(`CREATE TABLE %s AS SELECT * REPLACE (CONCAT('changed ', '%d') AS status, amount + 1 AS amount)
FROM %s WHERE status = 'changed %d'`, stage, round, dest, round)); err != nil {
		return c, err
	}
	lo, hi := touched[0], touched[len(touched)-1].AddDate(0, 0, 1)
	var sets, vals []string
	cols := []string{"id", "created_at", "customer", "status", "amount", "note", "updated_at"}
	for _, col := range cols {
		vals = append(vals, "S."+col)
		if col != "id" {
			sets = append(sets, fmt.Sprintf("%s = S.%s", col, col))
		}
	}
	sql := fmt.Sprintf(`MERGE %s T USING %s S
ON T.id = S.id AND T.created_at >= TIMESTAMP '%s' AND T.created_at < TIMESTAMP '%s'
WHEN MATCHED THEN UPDATE SET %s
WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)`, dest, stage, lo.Format(time.DateOnly), hi.Format(time.DateOnly),
		strings.Join(sets, ", "), strings.Join(cols, ", "), strings.Join(vals, ", "))
	before := p.Stats().BytesProcessed["MERGE"]
	if _, err := publishcost.Processed(ctx, client, sql); err != nil {
		return c, err
	}
	c.bytesProcessed = p.Stats().BytesProcessed["MERGE"] - before
	for _, day := range touched {
		b, err := publishcost.Processed(ctx, client, "SELECT * FROM "+dest+" WHERE "+dayFilter("created_at", day))
		if err != nil {
			return c, err
		}
		c.bytesWritten += b
	}
	return c, nil
}

func dayFilter(col string, day time.Time) string {
	return fmt.Sprintf("%s >= TIMESTAMP '%s' AND %s < TIMESTAMP '%s'", col, day.Format(time.DateOnly), col, day.AddDate(0, 0, 1).Format(time.DateOnly))
}
