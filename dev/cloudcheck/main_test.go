package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/testenv"
)

// cloud-check through the fidelity layer, which is how it is tested here:
// every day synced once, the re-publish gives the same day, the repeated
// load is adopted, and overlapping mutating transactions conflict.
func TestCloudCheckThroughFidelityLayer(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PG(t)
	b, _ := testenv.Fidelity(t, bqfidelity.Options{JobLatency: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cfg := bq.Config{Project: b.Project, Location: "US", Endpoint: b.Endpoint}
	if err := run(ctx, &out, cfg, dsn); err != nil {
		t.Fatalf("cloud-check: %v\n%s", err, out.String())
	}
	line := out.String()
	for _, want := range []string{"finished=3 ", "rows=1200 ", "republish=same ", "load_409=adopted ", "types=exact ", "untouched_days=8 "} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q: %s", want, line)
		}
	}
	m := regexp.MustCompile(`transaction_conflicts=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no transaction_conflicts in %s", line)
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 {
		t.Errorf("transaction_conflicts=%d: three overlapping mutating transactions on one table must conflict", n)
	}
	b2 := regexp.MustCompile(`publish_bytes=(\d+) publish_billed=\d+ staging_bytes=(\d+) replaced_bytes=(\d+) `).FindStringSubmatch(line)
	if b2 == nil {
		t.Fatalf("no publish_bytes, staging_bytes, replaced_bytes in %s", line)
	}
	published, _ := strconv.ParseInt(b2[1], 10, 64)
	staging, _ := strconv.ParseInt(b2[2], 10, 64)
	replaced, _ := strconv.ParseInt(b2[3], 10, 64)
	if published == 0 || staging == 0 || replaced == 0 || published > staging+replaced {
		t.Errorf("publish_bytes=%d staging_bytes=%d replaced_bytes=%d: want a publish billed for its staging and the day it replaces, no more", published, staging, replaced)
	}
}

// The publish MERGE pgbq ran before it used the documented constant-false
// form — joined on a column of NULLs, which BigQuery cannot prune and the
// layer bills as a full scan of the destination — makes cloud-check fail,
// naming the bound it exceeded.
func TestCloudCheckFailsAnUnprunedPublish(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PG(t)
	b, _ := testenv.Fidelity(t, bqfidelity.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cfg := bq.Config{Project: b.Project, Location: "US", Endpoint: b.Endpoint}
	err := runWith(ctx, &out, cfg, dsn, nullKeyPublish)
	if err == nil || !strings.Contains(err.Error(), "more than its staging") {
		t.Fatalf("err = %v, want the publish refused for exceeding staging plus the replaced partition\n%s", err, out.String())
	}
	t.Log(err)
}

// nullKeyPublish publishes a day of cloud-check's events table by the
// MERGE ON T.id = S.__pgbq_no_match that pgbq used to run.
func nullKeyPublish(ctx context.Context, client *bigquery.Client, wh *bq.Warehouse, day time.Time, staging string) error {
	filter := fmt.Sprintf("T.created_at >= TIMESTAMP '%s' AND T.created_at < TIMESTAMP '%s'", day.Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly))
	sql := fmt.Sprintf("MERGE %s AS T USING (SELECT *, CAST(NULL AS INT64) AS __pgbq_no_match FROM %s) AS S ON T.id = S.__pgbq_no_match\n"+
		"WHEN NOT MATCHED BY SOURCE AND (%s) THEN DELETE\n"+
		"WHEN NOT MATCHED THEN INSERT (id, created_at, kind, amount, payload) VALUES (S.id, S.created_at, S.kind, S.amount, PARSE_JSON(S.payload))",
		wh.DestRef(), staging, filter)
	q := client.Query(sql)
	q.JobID = fmt.Sprintf("%soldform_%d", publishPrefix, time.Now().UnixNano())
	return runQueryJob(ctx, q)
}

func runQueryJob(ctx context.Context, q *bigquery.Query) error {
	j, err := q.Run(ctx)
	if err != nil {
		return err
	}
	st, err := j.Wait(ctx)
	if err != nil {
		return err
	}
	return st.Err()
}

// Without a project it says what is missing and fails.
func TestCloudCheckNeedsAProject(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), new(bytes.Buffer), bq.Config{}, "host=x")
	if err == nil || !regexp.MustCompile(`BQ_PROJECT`).MatchString(err.Error()) {
		t.Fatalf("err = %v, want one naming BQ_PROJECT", err)
	}
}

// A publish BigQuery refuses for lacking a partition filter is named as
// such. The fidelity layer does not model require_partition_filter, so the
// refusal is BigQuery's documented answer, written here.
func TestCloudCheckNamesAPartitionFilterRefusal(t *testing.T) {
	t.Parallel()
	refusal := &bigquery.Error{Reason: "invalidQuery", Message: "Cannot query over table 'p.d." + scratchName +
		"' without a filter over column(s) 'created_at' that can be used for partition elimination"}
	err := publishError("2024-01-30", fmt.Errorf("publish: %w", refusal))
	if !errors.Is(err, errNoPartitionFilter) || !strings.Contains(err.Error(), "refused for lacking a partition filter") {
		t.Errorf("err = %v, want the refusal named", err)
	}
	if err := publishError("2024-01-30", errors.New("backendError")); errors.Is(err, errNoPartitionFilter) {
		t.Errorf("another failure named a partition filter refusal: %v", err)
	}
}
