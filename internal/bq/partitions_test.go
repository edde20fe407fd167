package bq

import (
	"strings"
	"testing"
	"time"
)

func date(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// Days outside 1960-01-01..2159-12-31 have no partition of their own (no
// decorator, no publish by load); planner check names them, and warns of
// a history near BigQuery's 10,000 partitions per table.
func TestPartitionRange(t *testing.T) {
	t.Parallel()
	for d, want := range map[string]bool{"1959-12-31": false, "1960-01-01": true, "2159-12-31": true, "2160-01-01": false, "0001-01-01": false, "9999-12-31": false, "2024-06-01": true} {
		if got := HasPartition(date(d)); got != want {
			t.Errorf("HasPartition(%s) = %v, want %v", d, got, want)
		}
	}
	for _, tc := range []struct {
		first, last string
		want        []string // one note each, holding these
	}{
		{"2020-01-01", "2026-12-07", nil},
		{"1901-03-04", "2026-12-07", []string{"days 1901-03-04..1959-12-31 are outside", "__UNPARTITIONED__", "published by MERGE", "spans 24448 days", "10000 partitions", "start date"}},
		{"1950-01-01", "1955-01-01", []string{"days 1950-01-01..1955-01-01 are outside"}},
		{"2100-01-01", "2200-01-01", []string{"days 2160-01-01..2200-01-01 are outside"}},
		{"2001-01-01", "2026-12-07", []string{"spans 9472 days"}},
		{"2005-01-01", "2026-12-07", nil}, // 8,011 days: under 90%
	} {
		notes := strings.Join(PartitionNote(date(tc.first), date(tc.last)), "\n")
		if len(tc.want) == 0 && notes != "" {
			t.Errorf("%s..%s: notes %q, want none", tc.first, tc.last, notes)
		}
		for _, w := range tc.want {
			if !strings.Contains(notes, w) {
				t.Errorf("%s..%s: notes %q do not say %q", tc.first, tc.last, notes, w)
			}
		}
	}
}
