package loader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

var errCrash = errors.New("simulated crash")

// crashAt returns a hook that fails the nth time point is reached, as a
// process killed there would stop: nothing after it runs.
func crashAt(point string, nth int) func(string) error {
	var mu sync.Mutex
	seen := 0
	return func(p string) error {
		mu.Lock()
		defer mu.Unlock()
		if p != point {
			return nil
		}
		seen++
		if seen == nth {
			return errCrash
		}
		return nil
	}
}

// crash runs s on day until the nth time it reaches point, where it stops
// as a killed process would, and fails the test if it did not get there.
func (r *rig) crash(s *Syncer, day time.Time, point string, nth int) {
	r.t.Helper()
	setHook(s, crashAt(point, nth))
	defer setHook(s, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Sync(ctx, day, time.Now().Add(time.Hour)); !errors.Is(err, errCrash) {
		r.t.Fatalf("run to crash at %s #%d: err = %v, want the simulated crash", point, nth, err)
	}
}

// A loader that dies at any point of a date and is run again ends with
// every row exactly once, having re-loaded at most one chunk: with the day
// published by load (byLoad) and from staging. With byLoad the staging
// loads stop once the day is published, which may come before the third
// load or checkpoint: those points are shown on the staging path only.
func TestCrashAnywhereThenResume(t *testing.T) {
	t.Parallel()
	const chunk, perDay = 60, 250
	for _, point := range []string{"read", "loaded", "checkpointed", "publish", "published", "finish"} {
		for _, byLoad := range []bool{false, true} {
			if byLoad && (point == "loaded" || point == "checkpointed") {
				continue
			}
			for _, shuffled := range []bool{false, true} {
				name := fmt.Sprintf("%s/byLoad=%v/shuffled=%v", point, byLoad, shuffled)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					r := newRig(t)
					day := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
					seedDays(t, r.pool, day, 1, perDay, shuffled)
					if byLoad {
						r.dropJSON() // JSON columns take the staging path
					}
					s := r.open(chunk)
					setNoDirect(s, !byLoad)
					nth := 1
					if point == "read" || point == "loaded" || point == "checkpointed" {
						nth = 3 // in the middle of the day
					}
					r.crash(s, day, point, nth)
					if got := r.syncAll(s, day); got != Finished {
						t.Fatalf("outcome after resume = %v, want finished", got)
					}
					r.check(day)
					if loaded := rowsLoaded(s); loaded > perDay+chunk {
						t.Fatalf("loaded %d rows for a %d-row day: more than one chunk of rework", loaded, perDay)
					}
					if e := r.entry(day); !e.IsFinished || e.SourceRows != perDay || e.BigQueryRows != perDay {
						t.Fatalf("sync_control = %+v", e)
					}
				})
			}
		}
	}
}

// The same message twice, one after the other and at the same time to
// two loaders, with and without the lease, leaves no duplicate.
func TestDuplicateDelivery(t *testing.T) {
	t.Parallel()
	for _, lease := range []bool{true, false} {
		t.Run(fmt.Sprintf("lease=%v", lease), func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			day := time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)
			seedDays(t, r.pool, day, 1, 400, false)
			a := r.open(50)
			b := r.open(50) // a second process: its own pool and lease connection
			setNoLease(a, !lease)
			setNoLease(b, !lease)
			var wg sync.WaitGroup
			outcomes := make([]Outcome, 2)
			for i, s := range []*Syncer{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outcomes[i] = r.syncUntilDone(s, day)
				}()
			}
			wg.Wait()
			r.check(day)
			// A third delivery, later, finds the date finished.
			if got := r.syncAll(a, day); got != AlreadyFinished {
				t.Fatalf("redelivery outcome = %v, want already_finished", got)
			}
			if outcomes[0] != Finished && outcomes[1] != Finished {
				t.Fatalf("outcomes %v: neither loader finished the date", outcomes)
			}
		})
	}
}

// syncUntilDone is what Pub/Sub redelivery does: try again while busy.
func (r *rig) syncUntilDone(s *Syncer, day time.Time) Outcome {
	for i := 0; i < 2000; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
		cancel()
		if err != nil {
			r.t.Errorf("sync: %v", err)
			return 0
		}
		switch out {
		case Continue:
		case Busy:
			time.Sleep(20 * time.Millisecond)
		default:
			return out
		}
	}
	r.t.Errorf("sync never ended")
	return 0
}

// Today is synced and published but stays unfinished; rows newer than the
// grace period wait for a later run (rows may still commit late below
// them); rows that arrive later are picked up; once the day has closed it
// is finished.
func TestTodayStaysUnfinished(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	day := time.Date(2024, 7, 4, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 100, false)
	s := r.open(40)
	now := day.Add(12 * time.Hour)
	s.Now = func() time.Time { return now }
	published := func(horizon time.Time) {
		t.Helper()
		if got := r.syncAll(s, day); got != Published {
			t.Fatalf("outcome = %v, want published", got)
		}
		if e := r.entry(day); e.IsFinished || e.State != "published" {
			t.Fatalf("sync_control = %+v, want published and unfinished", e)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var want int64
		if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM activity_logs WHERE created_at >= $1 AND created_at < $2`, day, horizon).Scan(&want); err != nil {
			t.Fatal(err)
		}
		got, err := r.wh.CountDay(ctx, day)
		if err != nil {
			t.Fatal(err)
		}
		if got.Rows != want || got.DistinctIDs != want || want == 0 {
			t.Fatalf("BigQuery has %d rows (%d distinct) for today, want the %d before %s", got.Rows, got.DistinctIDs, want, horizon)
		}
	}
	published(day.Add(11 * time.Hour))
	// More rows arrive today, with higher ids and later times.
	r.exec(`INSERT INTO activity_logs (id, user_id, action, created_at)
SELECT 1000 + g, 1, 'late', TIMESTAMPTZ '2024-07-04 20:00:00+00' + g * interval '1 second' FROM generate_series(1, 30) g`)
	now = day.Add(22 * time.Hour)
	published(day.Add(21 * time.Hour))
	// Within the grace period after midnight the day is still open.
	now = day.Add(24*time.Hour + 30*time.Minute)
	published(day.Add(23*time.Hour + 30*time.Minute))
	now = day.Add(26 * time.Hour)
	if got := r.syncAll(s, day); got != Finished {
		t.Fatalf("outcome after grace = %v, want finished", got)
	}
	if n := r.check(day); n != 130 {
		t.Fatalf("source rows = %d, want 130", n)
	}
}

// A day with no rows is finished with 0 rows.
func TestEmptyDayFinishes(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	seedDays(t, r.pool, time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), 1, 10, false)
	s := r.open(40)
	day := time.Date(2024, 7, 2, 0, 0, 0, 0, time.UTC)
	if got := r.syncAll(s, day); got != Finished {
		t.Fatalf("outcome = %v, want finished", got)
	}
	if e := r.entry(day); !e.IsFinished || e.SourceRows != 0 || e.BigQueryRows != 0 {
		t.Fatalf("sync_control = %+v", e)
	}
	if got := r.syncAll(s, day); got != AlreadyFinished {
		t.Fatalf("second outcome = %v, want already_finished", got)
	}
}

// A row committed late, with a position below the staged position of an
// unfinished date, is found before publish and the date is rebuilt.
func TestLateRowBelowPosition(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	day := time.Date(2024, 8, 8, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 200, false)
	s := r.open(30)
	setNoDirect(s, true) // the check before a MERGE publish; the crash comes mid-staging
	r.crash(s, day, "checkpointed", 4)
	r.exec(`INSERT INTO activity_logs (id, user_id, action, created_at) VALUES (5000, 1, 'late', '2024-08-08 00:00:01+00')`)
	if got := r.syncAll(s, day); got != Finished {
		t.Fatalf("outcome = %v", got)
	}
	if n := r.check(day); n != 201 {
		t.Fatalf("source rows = %d, want 201", n)
	}
}
