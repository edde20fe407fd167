package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/pgbq/pgbq/dev/internal/publishcost"
	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/loader"
)

// scratchName is the destination the publish is measured on: made with
// require_partition_filter = true, holding days the publish must not touch.
const scratchName = "cloudcheck_scratch"

// publishPrefix begins the id of every publish job (bq.JobID("publish", …)).
const publishPrefix = "pgbq_publish_"

// jobRecorder remembers the ids of the publish jobs the client inserts, so
// that the publish's own statistics can be read: PublishDays, production's
// code, returns no job.
type jobRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	ids  []string
}

func (r *jobRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/jobs") && req.Body != nil &&
		!strings.Contains(req.URL.Path, "/upload/") {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var j struct {
			JobReference struct {
				JobID string `json:"jobId"`
			} `json:"jobReference"`
		}
		if json.Unmarshal(body, &j) == nil && strings.HasPrefix(j.JobReference.JobID, publishPrefix) {
			r.mu.Lock()
			r.ids = append(r.ids, j.JobReference.JobID)
			r.mu.Unlock()
		}
	}
	return r.base.RoundTrip(req)
}

// last is the id of the publish job inserted last, "" if none.
func (r *jobRecorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids) == 0 {
		return ""
	}
	return r.ids[len(r.ids)-1]
}

// newClient is a BigQuery client for cfg whose publish jobs are recorded.
func newClient(ctx context.Context, cfg bq.Config) (*bigquery.Client, *jobRecorder, error) {
	rec := &jobRecorder{base: http.DefaultTransport}
	hc := &http.Client{Transport: rec}
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	} else {
		auth, err := google.DefaultClient(ctx, bigquery.Scope)
		if err != nil {
			return nil, nil, fmt.Errorf("application-default credentials: %w", err)
		}
		rec.base = auth.Transport
	}
	client, err := bigquery.NewClient(ctx, cfg.Project, append(opts, option.WithHTTPClient(hc))...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to BigQuery: %w", err)
	}
	client.Location = cfg.Location
	return client, rec, nil
}

// publishCost is what the scratch publish showed.
type publishCost struct {
	processed, billed int64 // the publish job's totalBytesProcessed and totalBytesBilled
	staging, replaced int64 // bytes of the day's staging and of the partition it replaced
	untouched         int   // days next to it, each found unchanged afterwards
	day               string
}

// publishFunc publishes day of wh from its staging. Production's is
// PublishDays; staging is the day's staging table, quoted. The test swaps in the MERGE pgbq used to run, to show the
// bound below catching it.
type publishFunc func(ctx context.Context, client *bigquery.Client, wh *bq.Warehouse, day time.Time, staging string) error

func productionPublish(ctx context.Context, _ *bigquery.Client, wh *bq.Warehouse, day time.Time, _ string) error {
	return wh.PublishDays(ctx, []time.Time{day}, nil)
}

// errNoPartitionFilter marks a publish refused by a destination made with
// require_partition_filter = true.
var errNoPartitionFilter = errors.New("the publish was refused for lacking a partition filter")

// scratchPublish stages the first day again into a destination made with
// require_partition_filter = true that holds it and 8 more days, publishes
// it by publish, and reads the job's bytes, the bound the docs give
// (staging plus every column of the replaced partition, as
// https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax#on-demand_query_size_calculation
// counts a DML statement) and whether the other days are as they were.
func (c *check) scratchPublish(ctx context.Context, publish publishFunc) (publishCost, error) {
	src := c.syncer.Source
	cost := publishCost{day: c.first.Format(time.DateOnly)}
	t := c.client.Dataset(c.cfg.Dataset).Table(scratchName)
	ts := src.Table().Columns[src.Table().TimestampIndex].Name
	id := src.Table().Columns[src.Table().IDIndex].Name
	if err := t.Create(ctx, &bigquery.TableMetadata{
		Schema:                 bq.BigQuerySchema(src.Table()),
		TimePartitioning:       &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: ts},
		Clustering:             &bigquery.Clustering{Fields: []string{id}},
		RequirePartitionFilter: true,
	}); err != nil {
		return cost, fmt.Errorf("create %s with require_partition_filter: %w", scratchName, err)
	}
	wh, err := bq.NewWarehouse(c.client, c.cfg, scratchName, src.Table())
	if err != nil {
		return cost, err
	}
	if err := loader.EnsureDestination(ctx, src, wh); err != nil {
		return cost, err
	}
	// The synced days, and the same shifted by one and two weeks.
	events := c.syncer.Warehouse.DestRef()
	fill := fmt.Sprintf("INSERT INTO %s SELECT x.* REPLACE (TIMESTAMP_ADD(x.created_at, INTERVAL 7 * k DAY) AS created_at, x.id + 1000000 * k AS id) FROM %s AS x, UNNEST(GENERATE_ARRAY(0, 2)) AS k",
		wh.DestRef(), events)
	if err := runOnce(ctx, c.client, fill); err != nil {
		return cost, fmt.Errorf("fill %s: %w", scratchName, err)
	}
	var others []time.Time
	for k := range 3 {
		for d := range days {
			if day := c.first.AddDate(0, 0, 7*k+d); !day.Equal(c.first) {
				others = append(others, day)
			}
		}
	}
	before, err := countDays(ctx, wh, others)
	if err != nil {
		return cost, err
	}
	if err := publishcost.Stage(ctx, c.syncer.Source, c.syncer.Encoder, wh, c.first, chunk); err != nil {
		return cost, fmt.Errorf("stage %s for %s: %w", cost.day, scratchName, err)
	}
	filter := fmt.Sprintf("created_at >= TIMESTAMP '%s' AND created_at < TIMESTAMP '%s'", cost.day, c.first.AddDate(0, 0, 1).Format(time.DateOnly))
	stagingRef := bq.Ref(c.cfg.Project, c.cfg.WithDefaults().StagingDataset, wh.Staging(c.first))
	if cost.staging, err = publishcost.Processed(ctx, c.client, "SELECT * FROM "+stagingRef+" WHERE "+filter); err != nil {
		return cost, fmt.Errorf("measure staging: %w", err)
	}
	if cost.replaced, err = publishcost.Processed(ctx, c.client, "SELECT * FROM "+wh.DestRef()+" WHERE "+filter); err != nil {
		return cost, fmt.Errorf("measure the replaced partition: %w", err)
	}
	if err := publish(ctx, c.client, wh, c.first, stagingRef); err != nil {
		return cost, publishError(cost.day, err)
	}
	if cost.processed, cost.billed, err = jobBytes(ctx, c.client, c.jobs.last()); err != nil {
		return cost, err
	}
	after, err := countDays(ctx, wh, append(others, c.first))
	if err != nil {
		return cost, err
	}
	if got := after[len(others)]; got.Rows != perDay || got.DistinctIDs != perDay {
		return cost, fmt.Errorf("after the publish %s holds %d rows (%d ids) of %s, want %d", scratchName, got.Rows, got.DistinctIDs, cost.day, perDay)
	}
	for i := range others {
		if after[i] == before[i] && before[i].Rows == perDay {
			cost.untouched++
		}
	}
	return cost, nil
}

// publishError names a publish refused for lacking a partition filter:
// BigQuery answers a query over a table made with require_partition_filter
// that cannot prune it with "Cannot query over table … without a filter
// over column(s) … that can be used for partition elimination"
// (https://cloud.google.com/bigquery/docs/managing-partitioned-tables#require-filter).
func publishError(day string, err error) error {
	if strings.Contains(err.Error(), "without a filter over column") {
		return fmt.Errorf("%w (%s into %s): %v", errNoPartitionFilter, day, scratchName, err)
	}
	return fmt.Errorf("publish %s into %s: %w", day, scratchName, err)
}

func countDays(ctx context.Context, wh *bq.Warehouse, ds []time.Time) ([]bq.DayStats, error) {
	out := make([]bq.DayStats, len(ds))
	for i, d := range ds {
		var err error
		if out[i], err = wh.CountDay(ctx, d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jobBytes reads the finished job id's totalBytesProcessed and
// totalBytesBilled.
func jobBytes(ctx context.Context, client *bigquery.Client, id string) (processed, billed int64, err error) {
	if id == "" {
		return 0, 0, errors.New("no publish job was inserted")
	}
	j, err := client.JobFromIDLocation(ctx, id, client.Location)
	if err != nil {
		return 0, 0, fmt.Errorf("read publish job %s: %w", id, err)
	}
	st := j.LastStatus()
	if st == nil || st.Statistics == nil {
		return 0, 0, fmt.Errorf("publish job %s has no statistics", id)
	}
	if q, ok := st.Statistics.Details.(*bigquery.QueryStatistics); ok {
		billed = q.TotalBytesBilled
	}
	return st.Statistics.TotalBytesProcessed, billed, nil
}
