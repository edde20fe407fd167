package pgcoord_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgbq/pgbq/internal/pgcoord"
	"github.com/pgbq/pgbq/internal/testenv"
)

// openQ connects to the database as a loader process of its own would.
func openQ(ctx context.Context, t *testing.T, dsn string) *pgcoord.Coord {
	t.Helper()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	c := pgcoord.New(pool)
	t.Cleanup(func() { c.Close(); pool.Close() })
	return c
}

// Twelve loaders (each its own Coord, as separate processes) announce a
// date each, arriving a little apart, and publish through the queue with
// a publish that takes 400 ms (the first until a second has started):
// every loader returns with its date published, batches hold several
// dates, no date is in two batches at once, PublishesInFlight batches run
// together and no more, and each batch starts at least hold(n) after the
// one before it started.
func TestPublishTogetherBatchesBoundsAndSpaces(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 12
	const holdPer = 50 * time.Millisecond
	hold := func(k int) time.Duration { return time.Duration(k) * holdPer }

	var mu sync.Mutex
	var inFlight, maxInFlight int
	var starts []time.Time
	var sizes []int
	busy := map[civil.Date]bool{}
	published := map[civil.Date]int{}
	second := make(chan struct{}) // closed when the second batch starts
	lead := func(_ context.Context, days []civil.Date, started func()) ([]civil.Date, error) {
		mu.Lock()
		for _, d := range days {
			if busy[d] {
				t.Errorf("%s is in two batches at once", d)
			}
			busy[d] = true
		}
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		if len(starts) > 0 {
			if gap, want := time.Since(starts[len(starts)-1]), hold(sizes[len(sizes)-1]); gap < want {
				t.Errorf("a batch started %s after the one before, want at least %s", gap, want)
			}
		}
		starts, sizes = append(starts, time.Now()), append(sizes, len(days))
		batch := len(starts)
		mu.Unlock()
		started()
		if batch == 2 {
			close(second)
		}
		time.Sleep(400 * time.Millisecond)
		if batch == 1 {
			// The first batch ends only once another has started: with
			// the turn held to the end of a batch it never would.
			select {
			case <-second:
			case <-time.After(30 * time.Second):
			}
		}
		mu.Lock()
		defer mu.Unlock()
		inFlight--
		for _, d := range days {
			busy[d] = false
			published[d]++
		}
		return days, nil
	}

	first := civil.Date{Year: 2024, Month: 1, Day: 1}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		src := openQ(ctx, t, dsn)
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 60 * time.Millisecond)
			_, errs[i] = src.PublishTogether(ctx, "p.d.t", first.AddDays(i), 5, hold, lead)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("loader %d: %v", i, err)
		}
	}
	t.Logf("batches %v, at most %d in flight", sizes, maxInFlight)
	for i := range n {
		if published[first.AddDays(i)] == 0 {
			t.Errorf("%s returned but was never published", first.AddDays(i))
		}
	}
	if len(sizes) >= n {
		t.Errorf("%d batches for %d dates: nothing was published together", len(sizes), n)
	}
	if maxInFlight != pgcoord.PublishesInFlight {
		t.Errorf("at most %d batches in flight at once, want %d: the turn is handed on once a batch has started", maxInFlight, pgcoord.PublishesInFlight)
	}
	for _, k := range sizes {
		if k > 5 {
			t.Errorf("a batch of %d dates, limit 5", k)
		}
	}
}

// A publish by itself (PublishAlone) runs only when it cannot get in the
// way: not while a date waits in the queue, not while a queued publish
// runs, and not once TableWrites publishes of the table — its own and the
// queue's, from any process — started within TableWriteWindow.
func TestPublishAloneKeepsToTheTableWrites(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := openQ(ctx, t, dsn), openQ(ctx, t, dsn)
	const key = "p.d.alone"
	alone := func(src *pgcoord.Coord) bool {
		t.Helper()
		ran, err := src.PublishAlone(ctx, key, 0, func(_ context.Context, started func()) error {
			started()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ran
	}
	day := civil.Date{Year: 2024, Month: 3, Day: 1}

	// A date waiting in the queue (its batch held open by a slow publish
	// of another date that a second loader runs) keeps a publish by
	// itself out, and so does the publish running.
	release := make(chan struct{})
	running := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := b.PublishTogether(ctx, key, day, 1, func(int) time.Duration { return 0 }, func(_ context.Context, days []civil.Date, started func()) ([]civil.Date, error) {
			started()
			close(running)
			<-release
			return days, nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	<-running
	for range 10 { // also once the queued publish has handed the turn on
		if alone(a) {
			t.Error("a publish by itself ran while a queued publish ran")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(release)
	wg.Wait()

	// The queued publish above took one write token: four publishes by
	// themselves may follow within the window, then none.
	ran := 0
	for range pgcoord.TableWrites + 1 {
		if alone(a) {
			ran++
		}
	}
	if ran != pgcoord.TableWrites-1 {
		t.Fatalf("%d publishes by themselves ran after a queued one, within %s; want %d", ran, pgcoord.TableWriteWindow, pgcoord.TableWrites-1)
	}
	// Another process sees the same tokens.
	if alone(b) {
		t.Error("another process published by itself with every write token of the window taken")
	}
}

// A date of any era — year 1, the day before the Unix epoch, the edges of
// BigQuery's partition range, 9999-12-31 — is published through the
// queue and its loader returns, alone or with other dates of other eras
// in one batch. A date before 1970 used to be announced under a key that
// pg_locks reported as a date 11.7 million years on: it was never claimed
// and its loader waited for ever.
func TestPublishTogetherEveryEra(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	days := []civil.Date{{Year: 1, Month: 1, Day: 1}, {Year: 1969, Month: 12, Day: 31}, {Year: 1959, Month: 12, Day: 31},
		{Year: 1960, Month: 1, Day: 1}, {Year: 1970, Month: 1, Day: 1}, {Year: 2159, Month: 12, Day: 31},
		{Year: 2160, Month: 1, Day: 1}, {Year: 9999, Month: 12, Day: 31}}
	var mu sync.Mutex
	published := map[civil.Date]bool{}
	publish := func(_ context.Context, batch []civil.Date, started func()) ([]civil.Date, error) {
		started()
		mu.Lock()
		defer mu.Unlock()
		for _, d := range batch {
			published[d] = true
		}
		return batch, nil
	}
	noHold := func(int) time.Duration { return 0 }
	src := openQ(ctx, t, dsn)
	for _, d := range days { // one at a time: each its own batch
		if _, err := src.PublishTogether(ctx, "p.d.era", d, 5, noHold, publish); err != nil {
			t.Fatalf("%s alone: %v", d, err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(days))
	for i, d := range days { // together: claimed by each other's leaders
		other := openQ(ctx, t, dsn)
		wg.Go(func() { _, errs[i] = other.PublishTogether(ctx, "p.d.era2", d, 3, noHold, publish) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s together: %v", days[i], err)
		}
	}
	for _, d := range days {
		if !published[d] {
			t.Errorf("%s returned but was never published", d)
		}
	}
	for d := range published {
		if !slices.Contains(days, d) {
			t.Errorf("published %s, which no loader announced", d)
		}
	}
}
