package planner

import (
	"testing"
	"time"
)

// Whatever the planner's schedule (every 1, 2, 3, 6, 8 or 24 hours), the
// audit reaches every block of old dates within a bounded number of runs.
func TestAuditReachesEveryBlock(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, period := range []int{1, 2, 3, 6, 8, 24} {
		for blocks := uint64(2); blocks <= 60; blocks++ {
			seen := map[uint64]bool{}
			runs := 0
			for ; len(seen) < int(blocks) && runs < int(blocks)*20; runs++ {
				seen[auditSlot(start.Add(time.Duration(runs*period)*time.Hour))%blocks] = true
			}
			if len(seen) < int(blocks) {
				t.Errorf("every %d h, %d blocks: %d reached in %d runs", period, blocks, len(seen), runs)
			}
		}
	}
}
