package loader

import (
	"context"
	"errors"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/testenv"
)

// News that a date was published — the NOTIFY of the publish queue — comes
// from another process: of a batch that claimed the date before this
// request staged its last rows, or from anyone who can connect to the
// source database. It never finishes a date by itself: a date published by
// another process's batch is finished only on counts read from BigQuery.
//
// A loader stages a whole day and dies before its publish; a row commits
// late, above the staged position; a batch claims the day (announced by the
// dead loader's successor) and publishes staging as it stood (or, forged,
// publishes nothing) and holds its claim; the next request stages the late
// row, announces the day and gets the batch's news. The batch holds the
// publish turn until it is released (its statement is never reported
// started), so the request waits for the news instead of leading.
func TestNewsOfAnotherPublishIsCounted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		merge bool // the batch really publishes (an older one); else the news is forged
	}{{"older batch", true}, {"forged news", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newFidelityRig(t, bqfidelity.Options{JobLatency: 50 * time.Millisecond})
			day := time.Date(2024, 11, 5, 0, 0, 0, 0, time.UTC)
			seedDays(t, r.pool, day, 1, 100, false)
			s := r.open(1000)
			setNoDirect(s, true)
			r.crash(s, day, "publish", 1)
			r.exec(`INSERT INTO activity_logs (id, user_id, action, created_at) VALUES (5000, 1, 'late', '2024-11-05 23:59:00+00')`)

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			merged, release := make(chan struct{}), make(chan struct{})
			batch := make(chan error, 1)
			go func() {
				_, err := s.Source.Coord().PublishTogether(ctx, s.Warehouse.DestRef(), civil.DateOf(day), 8,
					func(int) time.Duration { return 0 },
					func(ctx context.Context, dates []civil.Date, _ func()) ([]civil.Date, error) {
						if tc.merge {
							if err := s.Warehouse.PublishDays(ctx, []time.Time{day}, nil); err != nil {
								close(merged)
								return nil, err
							}
						}
						close(merged)
						<-release
						return dates, nil
					})
				batch <- err
			}()
			<-merged

			type result struct {
				out Outcome
				err error
			}
			req := make(chan result, 1)
			go func() {
				out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
				req <- result{out, err}
			}()
			// The request has announced the day: two announcements of it.
			testenv.WaitFor(t, time.Minute, "the request to announce the day", func() bool {
				var n int
				err := r.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
  AND mode = 'ShareLock' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
				return err == nil && n >= 2
			})
			close(release)
			if err := <-batch; err != nil {
				t.Fatal(err)
			}
			got := <-req
			if got.err != nil && !errors.Is(got.err, context.Canceled) {
				t.Fatal(got.err)
			}
			if got.out == Finished || r.entry(day).IsFinished {
				dest, err := r.wh.CountDay(ctx, day)
				if err != nil {
					t.Fatal(err)
				}
				if dest.Rows != 101 {
					t.Fatalf("the date was recorded finished on another process's news while BigQuery holds %d of its 101 rows", dest.Rows)
				}
			}
			// The date still ends right.
			if out := r.syncAll(s, day); out != Finished && out != AlreadyFinished {
				t.Fatalf("outcome %v, want finished", out)
			}
			if n := r.check(day); n != 101 {
				t.Fatalf("source rows = %d, want 101", n)
			}
		})
	}
}
