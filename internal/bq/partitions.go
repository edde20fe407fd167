package bq

import (
	"fmt"
	"strings"
	"time"
)

// Day partitions of a table partitioned by a TIMESTAMP, DATETIME or DATE
// column cover 1960-01-01 through 2159-12-31; rows of other days go to
// the __UNPARTITIONED__ partition, and a partition decorator for such a
// day is refused
// (https://cloud.google.com/bigquery/docs/partitioned-tables#date_timestamp_partitioned_tables).
// pgbq keeps years 1..9999 (the type contract): days outside the range
// are staged and published by MERGE, which writes them as BigQuery
// places them, and never by a load to the day's decorator.
var (
	FirstPartitionDay = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	LastPartitionDay  = time.Date(2159, 12, 31, 0, 0, 0, 0, time.UTC)
)

// MaxPartitions is BigQuery's limit of partitions per partitioned table
// (https://cloud.google.com/bigquery/quotas#partitioned_tables): a
// destination with more days of history than this cannot hold them in
// partitions of their own.
const MaxPartitions = 10_000

// HasPartition reports whether day (a UTC day) has a day partition of its
// own, so that its decorator (table$YYYYMMDD) is accepted.
func HasPartition(day time.Time) bool {
	return !day.Before(FirstPartitionDay) && !day.After(LastPartitionDay)
}

// PartitionNote says what BigQuery does with the days of [first, last]
// (the source's first and last day), for `planner check`: days outside
// the partition range and a history longer than MaxPartitions days. It
// is empty when nothing is to be said.
func PartitionNote(first, last time.Time) []string {
	var notes []string
	if first.IsZero() || last.IsZero() {
		return nil
	}
	first, last = first.UTC().Truncate(24*time.Hour), last.UTC().Truncate(24*time.Hour)
	var outside []string
	if first.Before(FirstPartitionDay) {
		outside = append(outside, fmt.Sprintf("%s..%s", first.Format(time.DateOnly), minTime(last, FirstPartitionDay.AddDate(0, 0, -1)).Format(time.DateOnly)))
	}
	if last.After(LastPartitionDay) {
		outside = append(outside, fmt.Sprintf("%s..%s", maxTime(first, LastPartitionDay.AddDate(0, 0, 1)).Format(time.DateOnly), last.Format(time.DateOnly)))
	}
	if len(outside) > 0 {
		notes = append(notes, fmt.Sprintf("days %s are outside BigQuery's day partitions (1960-01-01..2159-12-31): "+
			"their rows go to the table's __UNPARTITIONED__ partition, they are published by MERGE (never by load), "+
			"and a query that filters on them reads the whole __UNPARTITIONED__ partition", strings.Join(outside, " and ")))
	}
	lo, hi := maxTime(first, FirstPartitionDay), minTime(last, LastPartitionDay)
	if days := int(hi.Sub(lo)/(24*time.Hour)) + 1; !hi.Before(lo) && days > MaxPartitions*9/10 {
		notes = append(notes, fmt.Sprintf("the table spans %d days with day partitions (%s..%s), near or over BigQuery's %d partitions per table, "+
			"beyond which the jobs that would make more are refused: set a later start date (SYNC_START_DATE, or start_date in SYNC_TABLES) "+
			"to sync fewer days", days, lo.Format(time.DateOnly), hi.Format(time.DateOnly), MaxPartitions))
	}
	return notes
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
