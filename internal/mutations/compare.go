package mutations

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// The columns compared, as one text per row on each side: times as
// microseconds since the epoch, amounts in cents.
const (
	sourceRowsSQL = `SELECT id::text, concat_ws('|', (extract(epoch FROM created_at) * 1000000)::bigint, customer, status,
  coalesce(((amount * 100)::bigint)::text, '-'), coalesce(note, '-'), coalesce(((extract(epoch FROM updated_at) * 1000000)::bigint)::text, '-'))
FROM orders`
	destRowsSQL = `SELECT CAST(id AS STRING) AS id, CONCAT(CAST(UNIX_MICROS(created_at) AS STRING), '|', CAST(customer AS STRING), '|', status, '|',
  IFNULL(CAST(CAST(amount * 100 AS INT64) AS STRING), '-'), '|', IFNULL(note, '-'), '|',
  IFNULL(CAST(UNIX_MICROS(updated_at) AS STRING), '-')) AS v
FROM %s`
)

// compare reads both sides whole and counts stale, missing, extra and
// duplicated rows; then reads sync_control_log for the days re-opened
// and the rows they read again.
func (h *harness) compare(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, h.opt.DSN)
	if err != nil {
		return err
	}
	src := map[string]string{}
	rows, err := conn.Query(ctx, sourceRowsSQL)
	if err != nil {
		conn.Close(ctx)
		return err
	}
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			conn.Close(ctx)
			return err
		}
		src[id] = v
	}
	conn.Close(ctx)
	if err := rows.Err(); err != nil {
		return err
	}
	client, err := bq.NewClient(ctx, bq.Config{Project: h.opt.BQProject, Endpoint: h.opt.BQEndpoint})
	if err != nil {
		return err
	}
	defer client.Close()
	dest, err := bq.Rows[struct {
		ID string `bigquery:"id"`
		V  string `bigquery:"v"`
	}](bq.RunQuery(ctx, client, fmt.Sprintf(destRowsSQL, bq.Ref(h.opt.BQProject, h.opt.Dataset, "orders"))))
	if err != nil {
		return fmt.Errorf("read the destination: %w", err)
	}
	seen := map[string]int{}
	var examples []string
	for _, r := range dest {
		seen[r.ID]++
		want, ok := src[r.ID]
		switch {
		case !ok:
			h.rep.Extra++
		case seen[r.ID] > 1:
			h.rep.Dup++
		case want != r.V:
			h.rep.Stale++
			if len(examples) < 3 {
				examples = append(examples, fmt.Sprintf("id %s: source %s, BigQuery %s", r.ID, want, r.V))
			}
		}
	}
	for id := range src {
		if seen[id] == 0 {
			h.rep.Missing++
		}
	}
	if len(examples) > 0 {
		h.logf("stale rows, e.g. %s", strings.Join(examples, "; "))
	}
	return h.reopened(ctx, client)
}

// reopened counts the days the planner re-opened since the rounds began
// and the source rows each then read again: the day's source rows at its
// next publish.
func (h *harness) reopened(ctx context.Context, client *bigquery.Client) error {
	log, err := bq.Rows[struct {
		Date       civil.Date `bigquery:"sync_date"`
		State      string     `bigquery:"state"`
		SyncedAt   time.Time  `bigquery:"synced_at"`
		SourceRows int64      `bigquery:"source_rows"`
		Writer     string     `bigquery:"writer"`
	}](bq.RunQuery(ctx, client, fmt.Sprintf(`SELECT sync_date, state, synced_at, IFNULL(source_rows, 0) AS source_rows, IFNULL(writer, '') AS writer
FROM %s WHERE table_name = 'orders' AND synced_at >= TIMESTAMP_MICROS(%d) ORDER BY sync_date, synced_at`,
		bq.Ref(h.opt.BQProject, h.opt.Dataset, syncstate.LogTable), h.startedAt.UnixMicro())))
	if err != nil {
		return fmt.Errorf("read %s: %w", syncstate.LogTable, err)
	}
	for i, e := range log {
		if e.State != string(syncstate.StateReopened) || e.Writer != "planner" {
			continue
		}
		h.rep.DaysReopened++
		for _, next := range log[i+1:] {
			if next.Date != e.Date {
				break
			}
			if next.State == string(syncstate.StateFinished) || next.State == string(syncstate.StatePublished) {
				h.rep.RowsReread += next.SourceRows
				break
			}
		}
	}
	return nil
}
