package pgcoord_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/testenv"
)

// News of a publish is about the batch that sent it: a loader that
// published a day once and announces the same day again later (the day
// re-opened for rows that changed, a new staging generation) on the same
// pooled connection must not take the old publish's notification, still
// buffered on that connection, for news of the new one. It would then
// trust a destination whose row count is unchanged by an update and
// finish the day with the old values (seen in `make mutations` as a stale
// row; this test failed before the buffer was emptied: the second call
// returned at once).
func TestPublishNewsIsNeverOlderThanTheAnnouncement(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Two connections (the turn takes a second one): the queue's, the one
	// released last, is the one the second announcement reuses.
	one := openQ(ctx, t, dsn+" pool_max_conns=2")
	other := openQ(ctx, t, dsn)
	day := civil.Date{Year: 2024, Month: 3, Day: 1}
	// The other's turn lasts 15 s after its batch starts: longer than the
	// 3 s the second announcement waits.
	hold := func(int) time.Duration { return 15 * time.Second }
	publishes := 0
	publish := func(_ context.Context, days []civil.Date, started func()) ([]civil.Date, error) {
		publishes++
		started()
		return days, nil
	}
	if mine, err := one.PublishTogether(ctx, "dest", day, 10, func(int) time.Duration { return 0 }, publish); err != nil || !mine {
		t.Fatalf("first publish: mine %v, %v", mine, err)
	}
	// Another loader takes the table's turn with a batch that does not
	// end, so the day announced again can only learn of a publish by news.
	release := make(chan struct{})
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := other.PublishTogether(ctx, "dest", day.AddDays(1), 10, hold, func(ctx context.Context, days []civil.Date, started func()) ([]civil.Date, error) {
			started()
			close(running)
			<-release
			return days, nil
		})
		done <- err
	}()
	select {
	case <-running:
	case <-ctx.Done():
		t.Fatal("the other loader's batch never started")
	}
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	mine, err := one.PublishTogether(wctx, "dest", day, 10, hold, publish)
	wcancel()
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second announcement of %s returned (mine %v, %v) with no batch publishing it: it took old news", day, mine, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
