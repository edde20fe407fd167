// Command cloudcheck (`make cloud-check`) shows pgbq's BigQuery path on a
// real project: it creates a scratch dataset whose tables expire by
// themselves, syncs a small generated table from a throwaway PostgreSQL
// into it, re-publishes a finished day (partition replacement), loads one
// chunk twice under the same job id (409 adoption), syncs a table with one
// column of every type of the contract and compares every value, publishes
// a day into a destination made with require_partition_filter = true next
// to days it must not touch and reads what the publish billed, runs
// overlapping mutating transactions on one table (BigQuery's conflict
// rule), prints one line with what it saw and deletes the dataset. It
// fails when a publish is refused for lacking a partition filter or bills
// more than its staging plus the partition it replaces.
//
// It needs BQ_PROJECT, application-default credentials
// (`gcloud auth application-default login`) and PG_DSN (the Makefile
// starts a throwaway cluster). BQ_ENDPOINT, when set, points it at a
// stand-in instead (its own test runs it through the fidelity layer).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2/google"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/loader"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := bq.Config{Project: os.Getenv("BQ_PROJECT"), Location: os.Getenv("BQ_LOCATION"), Endpoint: os.Getenv("BQ_ENDPOINT")}
	if err := run(ctx, os.Stdout, cfg, os.Getenv("PG_DSN")); err != nil {
		fmt.Fprintln(os.Stderr, "cloud-check:", err)
		os.Exit(1)
	}
}

const (
	days    = 3
	perDay  = 400
	chunk   = 150
	srcName = "cloudcheck_events"
)

func run(ctx context.Context, out io.Writer, cfg bq.Config, pgDSN string) error {
	return runWith(ctx, out, cfg, pgDSN, productionPublish)
}

// runWith is run with the scratch day published by publish.
func runWith(ctx context.Context, out io.Writer, cfg bq.Config, pgDSN string, publish publishFunc) error {
	if cfg.Project == "" {
		return errors.New("BQ_PROJECT is not set: name a Google Cloud project you may create a scratch dataset in")
	}
	if cfg.Location == "" {
		cfg.Location = "US"
	}
	if pgDSN == "" {
		return errors.New("PG_DSN is not set (make cloud-check starts a throwaway PostgreSQL and sets it)")
	}
	if cfg.Endpoint == "" {
		if _, err := google.FindDefaultCredentials(ctx, bigquery.Scope); err != nil {
			return fmt.Errorf("no application-default credentials (run `gcloud auth application-default login`): %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	t0 := time.Now()
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	cfg.Dataset = "pgbq_cloudcheck_" + hex.EncodeToString(suffix[:])
	client, jobs, err := newClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	// Tables in the scratch dataset expire by themselves should the
	// deletion below never run.
	if err := client.Dataset(cfg.Dataset).Create(ctx, &bigquery.DatasetMetadata{Location: cfg.Location,
		DefaultTableExpiration: 6 * time.Hour, Description: "pgbq cloud-check scratch data; safe to delete"}); err != nil {
		return fmt.Errorf("create scratch dataset %s: %w", cfg.Dataset, err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer dcancel()
		if err := client.Dataset(cfg.Dataset).DeleteWithContents(dctx); err != nil {
			fmt.Fprintf(os.Stderr, "cloud-check: delete dataset %s: %v\n", cfg.Dataset, err)
		}
	}()

	first := time.Date(2024, 1, 30, 0, 0, 0, 0, time.UTC) // across a month end
	if err := seed(ctx, pgDSN, first); err != nil {
		return err
	}
	c := &check{cfg: cfg, client: client, jobs: jobs, first: first}
	if err := c.open(ctx, pgDSN); err != nil {
		return err
	}
	defer c.syncer.Source.Close()
	finished, rows, err := c.syncDays(ctx)
	if err != nil {
		return err
	}
	republish, err := c.republish(ctx)
	if err != nil {
		return err
	}
	adopted, err := c.adopt(ctx)
	if err != nil {
		return err
	}
	types, err := c.syncTypes(ctx, pgDSN)
	if err != nil {
		return err
	}
	cost, err := c.scratchPublish(ctx, publish)
	if err != nil {
		return err
	}
	conflicts, err := c.conflict(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cloud-check: project=%s dataset=%s dates=%d finished=%d rows=%d republish=%s load_409=%s transaction_conflicts=%d "+
		"types=%s publish_bytes=%d publish_billed=%d staging_bytes=%d replaced_bytes=%d untouched_days=%d wall_s=%.0f\n",
		cfg.Project, cfg.Dataset, days, finished, rows, republish, adopted, conflicts,
		types, cost.processed, cost.billed, cost.staging, cost.replaced, cost.untouched, time.Since(t0).Seconds())
	if bound := cost.staging + cost.replaced; cost.processed > bound {
		return fmt.Errorf("the publish of %s into %s processed %d bytes, more than its staging (%d) plus the partition it replaced (%d): BigQuery did not prune the destination",
			cost.day, scratchName, cost.processed, cost.staging, cost.replaced)
	}
	if finished != days || republish != "same" || adopted != "adopted" || types != "exact" || cost.untouched != 3*days-1 {
		return errors.New("BigQuery did not behave as pgbq relies on (see the line above)")
	}
	return nil
}

// seed creates the source tables.
func seed(ctx context.Context, dsn string, first time.Time) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, fmt.Sprintf(`
DROP TABLE IF EXISTS %[1]s;
CREATE TABLE %[1]s (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, kind text, amount numeric(10,2), payload jsonb);
CREATE INDEX ON %[1]s (created_at, id);
INSERT INTO %[1]s SELECT g, TIMESTAMPTZ '%[2]s' + (g - 1) * (interval '%[3]d days' / %[4]d),
  (ARRAY['view','click','buy'])[1 + g %% 3], (g %% 1000) / 10.0, jsonb_build_object('g', g)
FROM generate_series(1, %[4]d) g;
ANALYZE %[1]s;`, srcName, first.Format(time.RFC3339), days, days*perDay))
	if err != nil {
		return fmt.Errorf("seed %s: %w", srcName, err)
	}
	return seedTypes(ctx, conn)
}

type check struct {
	cfg    bq.Config
	client *bigquery.Client
	jobs   *jobRecorder
	first  time.Time
	syncer *loader.Syncer
}

func (c *check) open(ctx context.Context, dsn string) error {
	s, err := c.openSyncer(ctx, dsn, srcName)
	c.syncer = s
	return err
}

// openSyncer is a loader for the source table of that name, into the
// destination of the same name.
func (c *check) openSyncer(ctx context.Context, dsn, table string) (*loader.Syncer, error) {
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: dsn}, pgsource.TableSpec{Table: table, IDColumn: "id", TimestampColumn: "created_at"})
	if err != nil {
		return nil, err
	}
	wh, err := bq.NewWarehouse(c.client, c.cfg, table, src.Table())
	if err != nil {
		src.Close()
		return nil, err
	}
	state := syncstate.New(c.client, c.cfg.Project, c.cfg.Dataset)
	if err := state.Migrate(ctx); err != nil {
		src.Close()
		return nil, err
	}
	if err := loader.EnsureDestination(ctx, src, wh); err != nil {
		src.Close()
		return nil, err
	}
	enc, err := parquetenc.New(src.Table())
	if err != nil {
		src.Close()
		return nil, err
	}
	return &loader.Syncer{Source: src, Warehouse: wh, State: state, Encoder: enc, Table: table,
		ChunkSize: chunk, Grace: time.Hour, Writer: "cloud-check"}, nil
}

// syncDays syncs every day and counts the days whose rows all arrived once.
func (c *check) syncDays(ctx context.Context) (finished int, rows int64, err error) {
	for d := range days {
		day := c.first.AddDate(0, 0, d)
		out, err := c.syncDay(ctx, day)
		if err != nil {
			return 0, 0, fmt.Errorf("sync %s: %w", day.Format(time.DateOnly), err)
		}
		st, err := c.syncer.Warehouse.CountDay(ctx, day)
		if err != nil {
			return 0, 0, err
		}
		if out == loader.Finished && st.Rows == perDay && st.DistinctIDs == perDay {
			finished++
		}
		rows += st.Rows
	}
	return finished, rows, nil
}

func (c *check) syncDay(ctx context.Context, day time.Time) (loader.Outcome, error) {
	return c.syncDayWith(ctx, c.syncer, day)
}

func (c *check) syncDayWith(ctx context.Context, s *loader.Syncer, day time.Time) (loader.Outcome, error) {
	for range 100 {
		out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
		if err != nil || out != loader.Continue {
			return out, err
		}
	}
	return 0, errors.New("did not finish in 100 runs")
}

// republish rebuilds the first day from scratch: a new staging table, the
// day replaced again by partition replacement, still each row once.
func (c *check) republish(ctx context.Context) (string, error) {
	if err := c.syncer.Rebuild(ctx, c.first, "cloud-check: partition replacement"); err != nil {
		return "", err
	}
	st, err := c.syncer.Warehouse.CountDay(ctx, c.first)
	if err != nil {
		return "", err
	}
	if st.Rows == perDay && st.DistinctIDs == perDay {
		return "same", nil
	}
	return fmt.Sprintf("rows=%d,distinct=%d", st.Rows, st.DistinctIDs), nil
}

// adopt loads one chunk twice with the same job id: the second insert
// meets 409, adopts the first job, and staging holds the chunk once.
func (c *check) adopt(ctx context.Context) (string, error) {
	day := c.first.AddDate(0, 0, 1)
	wh := c.syncer.Warehouse
	gen, err := wh.EnsureStaging(ctx, day)
	if err != nil {
		return "", err
	}
	defer func() { _ = wh.DropStaging(context.WithoutCancel(ctx), day) }()
	b := new(schema.Batch)
	if err := c.syncer.Source.ReadChunk(ctx, day, day.AddDate(0, 0, 1), nil, chunk, b); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := c.syncer.Encoder.Encode(&buf, b); err != nil {
		return "", err
	}
	for range 2 {
		// The day was synced moments ago: a load may meet the staging
		// table's write rate limit, which is waited out as in a sync.
		if err := retry.Do(ctx, func(ctx context.Context, _ int) error {
			return wh.Load(ctx, day, gen, b.First, b.Last, b.Rows, buf.Bytes())
		}); err != nil {
			return "", err
		}
	}
	st, err := wh.StagedState(ctx, day, gen)
	if err != nil {
		return "", err
	}
	if st.Rows == int64(b.Rows) {
		return "adopted", nil
	}
	return fmt.Sprintf("duplicated(%d of %d)", st.Rows, b.Rows), nil
}

// conflict runs one mutating transaction per day — the shape of the
// DELETE+INSERT publish pgbq no longer uses — for three days of one table
// at once, and counts the transactions BigQuery aborts for a concurrent
// update.
func (c *check) conflict(ctx context.Context) (int, error) {
	wh := c.syncer.Warehouse
	var mu sync.Mutex
	conflicts := 0
	var wg sync.WaitGroup
	errs := make([]error, days)
	for d := range days {
		day := c.first.AddDate(0, 0, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo, hi := day.Format("2006-01-02 15:04:05+00"), day.AddDate(0, 0, 1).Format("2006-01-02 15:04:05+00")
			// A mutation that changes no value: still a mutating
			// transaction on the table, which is what conflicts.
			sql := fmt.Sprintf("BEGIN TRANSACTION;\nUPDATE %s SET kind = kind WHERE created_at >= TIMESTAMP '%s' AND created_at < TIMESTAMP '%s';\nCOMMIT TRANSACTION;",
				wh.DestRef(), lo, hi)
			// Straight through the client: pgbq's own job runner would
			// retry the aborted transaction, as it should in production.
			err := runOnce(ctx, c.client, sql)
			if err != nil && strings.Contains(strings.ToLower(err.Error()), "concurrent update") {
				mu.Lock()
				conflicts++
				mu.Unlock()
				return
			}
			errs[d] = err
		}()
	}
	wg.Wait()
	return conflicts, errors.Join(errs...)
}

// runOnce runs sql as one query job, without retries, and returns its error.
func runOnce(ctx context.Context, client *bigquery.Client, sql string) error {
	job, err := client.Query(sql).Run(ctx)
	if err != nil {
		return err
	}
	st, err := job.Wait(ctx)
	if err != nil {
		if st2, err2 := job.Status(ctx); err2 == nil && st2.Err() != nil {
			return st2.Err()
		}
		return err
	}
	return st.Err()
}
