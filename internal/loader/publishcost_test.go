package loader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
)

// queryBytes runs sql and returns its statistics.totalBytesProcessed, as
// the fidelity layer counts it by on-demand pricing's rules.
func queryBytes(ctx context.Context, t *testing.T, c *bigquery.Client, sql string) int64 {
	t.Helper()
	j, err := c.Query(sql).Run(ctx)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	st, err := j.Wait(ctx)
	if err != nil || st.Err() != nil {
		t.Fatalf("%s: %v %v", sql, err, st.Err())
	}
	return st.Statistics.TotalBytesProcessed
}

// The publish of a day is billed for what it reads and replaces — its
// staging and the day it replaces — and not for the rest of the
// destination: "if the merge condition uses a constant false predicate,
// BigQuery can use the filter condition for partition pruning"
// (https://cloud.google.com/bigquery/docs/using-dml-with-partitioned-tables#pruning_partitions_when_using_a_merge_statement),
// and a DML statement is billed q' + t' over the partitions it scans
// (https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax#on-demand_query_size_calculation).
// The same day is published into a destination, then into the same
// destination made ten times larger: the bytes must not grow.
func TestPublishBytesDoNotGrowWithTheDestination(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{})
	day := time.Date(2024, 5, 10, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 60, false)
	s := r.open(1000)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gen, err := s.Warehouse.EnsureStaging(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if err := stageFirstRows(ctx, t, s, day, gen, 60); err != nil {
		t.Fatal(err)
	}
	dest := s.Warehouse.DestRef()
	staging := bq.Ref(r.bq.Project, r.bq.Config().StagingDataset, s.Warehouse.Staging(day))
	dayFilter := fmt.Sprintf("created_at >= TIMESTAMP '%s' AND created_at < TIMESTAMP '%s'", day.Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly))
	publish := func() (published, bound int64) {
		t.Helper()
		stagingBytes := queryBytes(ctx, t, r.bq.Client, "SELECT * FROM "+staging+" WHERE "+dayFilter)
		replacedBytes := queryBytes(ctx, t, r.bq.Client, "SELECT * FROM "+dest+" WHERE "+dayFilter)
		before := proxy.Stats().BytesProcessed["MERGE"]
		if err := s.Warehouse.PublishDays(ctx, []time.Time{day}, nil); err != nil {
			t.Fatal(err)
		}
		published = proxy.Stats().BytesProcessed["MERGE"] - before
		t.Logf("publish_bytes=%d staging_bytes=%d replaced_bytes=%d", published, stagingBytes, replacedBytes)
		return published, stagingBytes + replacedBytes
	}
	// A destination of the day and one more day, then the first publish.
	r.bqExec(ctx, fmt.Sprintf("INSERT INTO %s SELECT x.* REPLACE (TIMESTAMP_ADD(x.created_at, INTERVAL 1 DAY) AS created_at, x.id + 1000000 AS id) FROM %s AS x WHERE %s", dest, staging, dayFilter))
	publish()                      // the day arrives
	small, smallBound := publish() // the day as published, replaced by itself
	if small > smallBound {
		t.Errorf("publish billed %d bytes, more than staging plus the replaced day (%d)", small, smallBound)
	}
	// Ten times the destination: 19 more days like the neighbour.
	r.bqExec(ctx, fmt.Sprintf("INSERT INTO %s SELECT x.* REPLACE (TIMESTAMP_ADD(x.created_at, INTERVAL k DAY) AS created_at, x.id + 1000000 * k AS id) FROM %s AS x, UNNEST(GENERATE_ARRAY(2, 20)) AS k WHERE %s", dest, staging, dayFilter))
	large, largeBound := publish()
	if large > largeBound {
		t.Errorf("publish into the 10x destination billed %d bytes, more than staging plus the replaced day (%d)", large, largeBound)
	}
	if large > small {
		t.Errorf("publish bytes grew with the destination: %d into 2 days, %d into 21 days", small, large)
	}
}

// bqExec runs one statement through the rig's BigQuery client.
func (r *rig) bqExec(ctx context.Context, sql string) {
	r.t.Helper()
	j, err := r.bq.Client.Query(sql).Run(ctx)
	if err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
	st, err := j.Wait(ctx)
	if err != nil || st.Err() != nil {
		r.t.Fatalf("%s: %v %v", sql, err, st.Err())
	}
}
