package planner

import (
	"testing"

	"cloud.google.com/go/civil"
)

// Whatever window the sweep starts at, ceil(days/n) runs in a row compare
// every day of the history at least once, and no run compares more than n
// days: the bound docs/changes.md promises for finding a delete.
func TestSweepCoversTheHistoryInBoundedRuns(t *testing.T) {
	t.Parallel()
	first := civil.Date{Year: 2024, Month: 1, Day: 1}
	for _, days := range []int{1, 2, 30, 31, 32, 62, 366} {
		last := first.AddDays(days - 1)
		for _, n := range []int{1, 7, 31, 400} {
			runs := (days + n - 1) / n
			for start := -1; start <= days; start++ {
				var from civil.Date
				if start >= 0 {
					from = first.AddDays(start) // start == days: outside, so from the beginning
				}
				seen := map[civil.Date]bool{}
				for range runs {
					windows, next := sweepWindows(first, last, from, n)
					size := 0
					for _, w := range windows {
						for d := w[0]; !d.After(w[1]); d = d.AddDays(1) {
							seen[d] = true
							size++
						}
					}
					if size > n || size > days {
						t.Fatalf("days=%d n=%d: a run compared %d days", days, n, size)
					}
					from = next
				}
				if len(seen) != days {
					t.Fatalf("days=%d n=%d start=%d: %d runs compared %d of %d days", days, n, start, runs, len(seen), days)
				}
			}
		}
	}
}
