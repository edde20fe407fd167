package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// These tests run through the BigQuery fidelity layer (internal/bqfidelity):
// the emulator underneath, BigQuery's documented job, transaction, quota and
// partition-decorator behaviour on top.

func newFidelityRig(t *testing.T, opt bqfidelity.Options) (*rig, *bqfidelity.Proxy) {
	t.Helper()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool, activityLogsDDL)
	b, p := testenv.Fidelity(t, opt)
	return &rig{t: t, pool: pool, dsn: dsn, bq: b}, p
}

// newSyncer is one more loader instance on r's table: its own connection
// pool, warehouse and encoder, as a separate process would have.
func (r *rig) newSyncer(chunk int, writer string) *Syncer {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: r.dsn}, pgsource.TableSpec{Table: "activity_logs", IDColumn: "id", TimestampColumn: "created_at"})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(src.Close)
	wh, err := bq.NewWarehouse(r.bq.Client, r.bq.Config(), "activity_logs", src.Table())
	if err != nil {
		r.t.Fatal(err)
	}
	enc, err := parquetenc.New(src.Table())
	if err != nil {
		r.t.Fatal(err)
	}
	return &Syncer{Source: src, Warehouse: wh, State: syncstate.New(r.bq.Client, r.bq.Project, r.bq.Dataset),
		Encoder: enc, Table: "activity_logs", ChunkSize: chunk, Grace: time.Hour, Writer: writer}
}

// failedEntries counts the failed rows in the sync_control log.
func (r *rig) failedEntries() int64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it, err := bq.RunQuery(ctx, r.bq.Client, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE state = '%s'",
		bq.Ref(r.bq.Project, r.bq.Dataset, syncstate.LogTable), syncstate.StateFailed))
	if err != nil {
		r.t.Fatal(err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		r.t.Fatal(err)
	}
	return row[0].(int64)
}

// Twenty dates of one table published by ten loaders at once: partition
// replacement does not conflict, so every date finishes on its first
// publish and no transaction is cancelled. (The fidelity layer's own test
// shows the old DELETE+INSERT transaction conflicting under the same load.)
func TestTenLoadersPublishTwentyDates(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: 300 * time.Millisecond})
	first := time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)
	const days, perDay = 20, 60
	seedDays(t, r.pool, first, days, perDay, false)
	r.open(25) // destination, state, and r.src/r.wh for the checks
	dates := make(chan time.Time, days)
	for d := range days {
		dates <- first.AddDate(0, 0, d)
	}
	close(dates)
	var wg sync.WaitGroup
	errs := make(chan error, days)
	for i := range 10 {
		s := r.newSyncer(25, fmt.Sprintf("loader-%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for day := range dates {
				out, err := syncUntilDone(s, day)
				if err != nil || out != Finished {
					errs <- fmt.Errorf("%s: outcome %v, error %v", day.Format(time.DateOnly), out, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for d := range days {
		if n := r.check(first.AddDate(0, 0, d)); n != perDay {
			t.Fatalf("day %d: source has %d rows, want %d", d, n, perDay)
		}
	}
	st := proxy.Stats()
	if st.TransactionConflicts != 0 {
		t.Errorf("publish conflicts = %d, want 0", st.TransactionConflicts)
	}
	if n := r.failedEntries(); n != 0 {
		t.Errorf("%d failed rows in sync_control, want 0", n)
	}
}

// syncUntilDone syncs day until the outcome is not Continue or Busy.
func syncUntilDone(s *Syncer, day time.Time) (Outcome, error) {
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
		cancel()
		if err != nil {
			return out, err
		}
		if out == Busy {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if out != Continue {
			return out, nil
		}
	}
	return 0, errors.New("never ended")
}

// A lost answer — the job did its work, the answer was a 500 — to every
// kind of data-changing job: the client's re-send of jobs.insert, or our
// retry, meets 409 and adopts the job; the work is done once and the date
// finishes without a failed row.
func TestLostAnswersAdoptTheJob(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: 100 * time.Millisecond})
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 2, 90, false)
	s := r.open(40)
	setNoDirect(s, true) // staging loads and the MERGE; TestPublishByLoad shows the load that publishes

	// Day 1 through load jobs and the publish (a MERGE query job).
	proxy.Inject(bqfidelity.Fault{Kind: "load", Count: 2, AfterWork: true})
	proxy.Inject(bqfidelity.Fault{Kind: "query", Table: "activity_logs", Count: 1, AfterWork: true})
	if out := r.syncAll(s, day); out != Finished {
		t.Fatalf("outcome %v, want finished", out)
	}
	r.check(day)

	// Day 2 with duplicates in staging: stage its first chunk twice (the
	// second time under another id, as a loader that lost a race with
	// another generation would), so the publish must de-duplicate.
	day2 := day.AddDate(0, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gen, err := s.Warehouse.EnsureStaging(ctx, day2)
	if err != nil {
		t.Fatal(err)
	}
	b := new(schema.Batch)
	if err := s.Source.ReadChunk(ctx, day2, day2.AddDate(0, 0, 1), nil, 40, b); err != nil {
		t.Fatal(err)
	}
	data := encodeBatch(t, s, b)
	for _, g := range []bq.Generation{gen, gen + 1} { // the second id is another loader's
		if err := s.Warehouse.Load(ctx, day2, g, b.First, b.Last, b.Rows, data); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Inject(bqfidelity.Fault{Kind: "query", Table: "activity_logs", Count: 1, AfterWork: true})
	before := proxy.Stats().Duplicate409
	if out := r.syncAll(s, day2); out != Finished {
		t.Fatalf("day 2 outcome %v, want finished", out)
	}
	r.check(day2)
	st := proxy.Stats()
	t.Logf("stats: %+v", st)
	if st.Duplicate409 <= before {
		t.Errorf("no 409 after the lost answer to the publish query (409s before %d, after %d)", before, st.Duplicate409)
	}
	if st.Duplicate409 < 4 {
		t.Errorf("409s = %d, want at least one per lost answer (4)", st.Duplicate409)
	}
	if n := r.failedEntries(); n != 0 {
		t.Errorf("%d failed rows in sync_control, want 0", n)
	}
}

// Job-level failures arrive as errorResult on an HTTP 200 and are judged
// by their reason: internalError and backendError are retried,
// rateLimitExceeded backs off, and notFound on the staging table (dropped
// by another loader) starts the date again from an empty staging table.
func TestJobErrorsByReason(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: 50 * time.Millisecond})
	day := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 120, false)
	s := r.open(30)
	setNoDirect(s, true) // the staging path's loads and MERGE
	proxy.Inject(bqfidelity.Fault{Kind: "load", Count: 1, JobErrorReason: "internalError"})
	proxy.Inject(bqfidelity.Fault{Kind: "load", Count: 1, JobErrorReason: "backendError"})
	proxy.Inject(bqfidelity.Fault{Kind: "load", Count: 1, JobErrorReason: "rateLimitExceeded"})
	proxy.Inject(bqfidelity.Fault{Kind: "query", Table: "activity_logs", Count: 1, JobErrorReason: "backendError"})

	// After the second chunk is staged, another loader drops staging.
	dropped := false
	setHook(s, func(point string) error {
		if point == "checkpointed" && !dropped {
			dropped = true
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return s.Warehouse.DropStaging(ctx, day)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if out != Continue {
		t.Fatalf("first sync outcome %v, want continue (staging dropped under it)", out)
	}
	before := rowsLoaded(s)
	if got := r.syncAll(s, day); got != Finished {
		t.Fatalf("outcome %v, want finished", got)
	}
	if redone := rowsLoaded(s) - before; redone != 120 {
		t.Errorf("after the drop %d rows were staged, want the whole day (120) from an empty staging", redone)
	}
	r.check(day)
	if n := r.failedEntries(); n != 0 {
		t.Errorf("%d failed rows in sync_control, want 0", n)
	}
}

// Fifty loader instances starting at once against BigQuery's metadata
// limits: they only read metadata (the state tables come from `planner
// migrate`), the destination is created by one of them under a lease, so
// none meets a rate limit and none fails to start.
func TestFiftyInstancesStart(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{})
	seedDays(t, r.pool, time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), 1, 10, false)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := r.newSyncer(100, fmt.Sprintf("i%d", i))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := s.State.Check(ctx); err != nil {
				errs <- err
				return
			}
			if err := EnsureDestination(ctx, s.Source, s.Warehouse); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("instance start: %v", err)
	}
	if st := proxy.Stats(); len(st.RateLimited) != 0 {
		t.Errorf("metadata writes were refused by rate limits: %v", st.RateLimited)
	}
}

// A loader that starts before `planner migrate` has run waits, then says
// what to run.
func TestStartBeforeMigrate(t *testing.T) {
	t.Parallel()
	b := testenv.BigQuery(t)
	st := syncstate.New(b.Client, b.Project, testenv.Name("nostate"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := st.Check(ctx)
	if err == nil {
		t.Fatal("Check passed without state tables")
	}
	if got := err.Error(); !strings.Contains(got, "planner migrate") {
		t.Fatalf("error %q does not say to run planner migrate", got)
	}
}

func encodeBatch(t *testing.T, s *Syncer, b *schema.Batch) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Encoder.Encode(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A publish whose request is abandoned (deadline, SIGTERM) is cancelled:
// BigQuery would otherwise run it later, and a partial staging — here a
// rebuild that has staged one chunk — would replace a finished day.
func TestAbandonedPublishIsCancelled(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: 2 * time.Second})
	day := time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 100, false)
	s := r.open(40)
	if out := r.syncAll(s, day); out != Finished {
		t.Fatalf("outcome %v, want finished", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gen, err := s.Warehouse.EnsureStaging(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if err := stageFirstRows(ctx, t, s, day, gen, 40); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err = s.Warehouse.PublishDays(short, []time.Time{day}, nil)
	cancelShort()
	if err == nil {
		t.Fatal("a publish with a 300 ms deadline and 2 s jobs returned no error")
	}
	// A cancelled job has ended for good: after this the day can only show
	// what it would show had the abandoned publish been allowed to run.
	testenv.WaitFor(t, 2*time.Minute, "the abandoned publish to end cancelled", func() bool {
		return proxy.Stats().JobsCancelled >= 1
	})
	r.check(day) // still the whole day, not the one staged chunk
}

// A crash between two loads in flight of one date: the later chunk landed,
// the earlier one did not. The resume must not start after the later
// chunk (that would skip the earlier one's rows): it finds the gap, starts
// from the last fully staged prefix, adopts the landed load by its job id
// instead of staging it twice, and the day arrives exactly once.
func TestCrashBetweenTwoLoadsInFlight(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: 100 * time.Millisecond})
	day := time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 100, false)
	s := r.open(30)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gen, err := s.Warehouse.EnsureStaging(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	// What the crashed loader left: chunk 2 staged, chunk 1 not.
	first, second := new(schema.Batch), new(schema.Batch)
	end := day.AddDate(0, 0, 1)
	if err := s.Source.ReadChunk(ctx, day, end, nil, 30, first); err != nil {
		t.Fatal(err)
	}
	if err := s.Source.ReadChunk(ctx, day, end, &first.Last, 30, second); err != nil {
		t.Fatal(err)
	}
	if err := s.Warehouse.Load(ctx, day, gen, second.First, second.Last, second.Rows, encodeBatch(t, s, second)); err != nil {
		t.Fatal(err)
	}
	before := proxy.Stats().Duplicate409
	if out := r.syncAll(s, day); out != Finished {
		t.Fatalf("outcome %v, want finished", out)
	}
	r.check(day)
	if proxy.Stats().Duplicate409 <= before {
		t.Error("the landed chunk was not adopted by its job id")
	}
}

// A day staged in one go, with ids a unique index proves unique, is
// published on its staging table's row count (table metadata) instead of
// counting queries: the date's state read is its only query job. When
// something else writes the staging table between the staging and the
// publish — here the day's first rows again, under chunk boundaries of
// its own, as a loader that lost its lease would — the row count no
// longer matches, the publish counts with queries, de-duplicates, and the
// day still arrives exactly once.
func TestPublishTrustsRowCountsOnlyWhileStagingIsUnchanged(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{JobLatency: 100 * time.Millisecond})
	day := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 2, 100, false)
	s := r.open(30)
	setNoDirect(s, true) // the staging path's counting
	queries := func() int { return proxy.Stats().JobsRun["query"] }
	before := queries()
	if out := r.syncAll(s, day); out != Finished {
		t.Fatalf("outcome %v, want finished", out)
	}
	if n := queries() - before; n != 2 {
		t.Fatalf("a day staged in one go ran %d query jobs, want 2 (its state read and the publish)", n)
	}
	r.check(day)

	next := day.AddDate(0, 0, 1)
	setHook(s, func(point string) error {
		if point != "publish" {
			return nil
		}
		setHook(s, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		gen, _, err := s.Warehouse.StagingRows(ctx, next)
		if err != nil {
			return err
		}
		return stageFirstRows(ctx, t, s, next, gen, 20)
	})
	before = queries()
	if out := r.syncAll(s, next); out != Finished {
		t.Fatalf("outcome %v, want finished", out)
	}
	if n := queries() - before; n < 4 {
		t.Fatalf("a day whose staging changed before its publish ran %d query jobs: the publish trusted a stale count", n)
	}
	r.check(next)
}

// stageFirstRows loads the first n rows of day into its staging table
// (generation gen) as one load job of their own. The table may have been
// written moments before, so its write rate limit is waited out, as a
// sync does.
func stageFirstRows(ctx context.Context, t *testing.T, s *Syncer, day time.Time, gen bq.Generation, n int) error {
	t.Helper()
	b := new(schema.Batch)
	if err := s.Source.ReadChunk(ctx, day, day.AddDate(0, 0, 1), nil, n, b); err != nil {
		return err
	}
	data := encodeBatch(t, s, b)
	return retry.Do(ctx, func(ctx context.Context, _ int) error {
		return s.Warehouse.Load(ctx, day, gen, b.First, b.Last, b.Rows, data)
	})
}
