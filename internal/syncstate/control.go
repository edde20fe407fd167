package syncstate

import (
	"context"
	"fmt"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
)

// Scan calls fn with the current entry of each date of table in [from,
// to] (a zero bound is open), oldest first, as the rows arrive: one query
// over the sync_control view.
func (s *Store) Scan(ctx context.Context, table string, from, to civil.Date, fn func(Entry) error) error {
	if !bq.TableNameRE.MatchString(table) {
		return fmt.Errorf("read %s: bad table name %q", View, table)
	}
	filter := " AND NOT " + isControl
	if !from.IsZero() {
		filter += fmt.Sprintf(" AND sync_date >= DATE '%s'", from)
	}
	if !to.IsZero() {
		filter += fmt.Sprintf(" AND sync_date <= DATE '%s'", to)
	}
	for r, err := range bq.Each[entryRow](bq.RunQuery(ctx, s.client, s.entriesSQL(table, filter+" ORDER BY sync_date"))) {
		if err != nil {
			return fmt.Errorf("read %s: %w", View, err)
		}
		if err := fn(r.entry()); err != nil {
			return err
		}
	}
	return nil
}

// FailureCounts counts, per date of table, the failed entries since the
// date was last re-opened (of its newest epoch; distinct by synced_at: streaming
// de-duplication is best effort). Dates without failures are absent.
func (s *Store) FailureCounts(ctx context.Context, table string) (map[civil.Date]int, error) {
	if !bq.TableNameRE.MatchString(table) {
		return nil, fmt.Errorf("read %s: bad table name %q", LogTable, table)
	}
	sql := fmt.Sprintf(`SELECT sync_date, COUNT(DISTINCT IF(state = '%s', synced_at, NULL)) AS failures
FROM (
  %s
  FROM %s WHERE table_name = '%s' AND NOT %s
)
WHERE %s
GROUP BY sync_date`, StateFailed, epochCut("PARTITION BY sync_date"), bq.Ref(s.project, s.dataset, LogTable), table, isControl, epochWhere)
	rows, err := bq.Rows[struct {
		Date     civil.Date `bigquery:"sync_date"`
		Failures int64      `bigquery:"failures"`
	}](bq.RunQuery(ctx, s.client, sql))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", LogTable, err)
	}
	out := map[civil.Date]int{}
	for _, r := range rows {
		if r.Failures > 0 {
			out[r.Date] = int(r.Failures)
		}
	}
	return out, nil
}

// Paused reports whether table is paused, and the entry that paused it.
func (s *Store) Paused(ctx context.Context, table string) (bool, Entry, error) {
	all, err := s.latest(ctx, table, fmt.Sprintf(" AND sync_date = DATE '%s' AND %s", ControlDate, isControl))
	if err != nil {
		return false, Entry{}, err
	}
	e, ok := all[ControlDate]
	if !ok {
		return false, Entry{}, nil
	}
	return e.State == StatePaused, e, nil
}

// FirstDate is the earliest date of table that sync_control records
// anything for (control rows aside); ok is false when there is none.
func (s *Store) FirstDate(ctx context.Context, table string) (day civil.Date, ok bool, err error) {
	if !bq.TableNameRE.MatchString(table) {
		return civil.Date{}, false, fmt.Errorf("read %s: bad table name %q", LogTable, table)
	}
	sql := fmt.Sprintf(`SELECT MIN(sync_date) AS first FROM %s WHERE table_name = '%s' AND NOT %s`,
		bq.Ref(s.project, s.dataset, LogTable), table, isControl)
	r, err := bq.Row[struct {
		First bigquery.NullDate `bigquery:"first"`
	}](bq.RunQuery(ctx, s.client, sql))
	if err != nil {
		return civil.Date{}, false, fmt.Errorf("read %s: %w", LogTable, err)
	}
	return r.First.Date, r.First.Valid, nil
}
