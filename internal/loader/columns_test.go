package loader

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/publish"
)

// A column is added to the source while a back-fill runs: one loader
// staged its day before (without the column), another after (with it,
// filled). Whichever of them leads a batch holding both days, no day is
// published with columns other than its staging's, and the other
// loader's day never fails the leader's batch: the leader publishes only
// the days staged with its own columns and leaves the others to their
// owners.
func TestLeaderPublishesOnlyDaysOfItsColumns(t *testing.T) {
	t.Parallel()
	for _, leaderHasColumn := range []bool{false, true} {
		t.Run(fmt.Sprintf("leader_has_column=%v", leaderHasColumn), func(t *testing.T) {
			t.Parallel()
			r, _ := newFidelityRig(t, bqfidelity.Options{JobLatency: 50 * time.Millisecond})
			before := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
			after := before.AddDate(0, 0, 1)
			seedDays(t, r.pool, before, 2, 50, false)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()

			old := r.newSyncer(1000, "old")
			setNoDirect(old, true)
			if err := EnsureDestination(ctx, old.Source, old.Warehouse); err != nil {
				t.Fatal(err)
			}
			r.crash(old, before, "publish", 1) // staged without the column
			r.exec(`ALTER TABLE activity_logs ADD COLUMN c text`)
			r.exec(fmt.Sprintf(`UPDATE activity_logs SET c = 'c' || id WHERE created_at >= '%s'`, after.Format(time.RFC3339)))
			neu := r.newSyncer(1000, "new")
			setNoDirect(neu, true)
			if err := EnsureDestination(ctx, neu.Source, neu.Warehouse); err != nil {
				t.Fatal(err)
			}
			r.crash(neu, after, "publish", 1) // staged with the column

			leader, own, other := old, before, after
			if leaderHasColumn {
				leader, own, other = neu, after, before
			}
			done, err := publish.Batch(ctx, leader.Warehouse, own, []civil.Date{civil.DateOf(own), civil.DateOf(other)}, nil)
			if err != nil {
				t.Fatalf("the leader's batch failed for another loader's day: %v", err)
			}
			if !slices.Contains(done, civil.DateOf(own)) {
				t.Fatalf("published %v: not the leader's own day", done)
			}
			if slices.Contains(done, civil.DateOf(after)) {
				rows, err := bq.Rows[[]bigquery.Value](neu.Warehouse.Query(ctx, fmt.Sprintf(
					"SELECT COUNTIF(c IS NULL) FROM %s WHERE created_at >= TIMESTAMP '%s' AND created_at < TIMESTAMP '%s'",
					neu.Warehouse.DestRef(), after.Format(time.DateOnly), after.AddDate(0, 0, 1).Format(time.DateOnly))))
				if err != nil {
					t.Fatal(err)
				}
				if n := rows[0][0]; n != int64(0) {
					t.Fatalf("the day staged with the column was published with %v of its 50 values of it NULL", n)
				}
			}
		})
	}
}
