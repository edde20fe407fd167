package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/civil"
	"cloud.google.com/go/pubsub/v2"
	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/syncstate"
)

const maxRounds = 40

// rounds plans, duplicates and disturbs until every date is finished and
// every fault kind has been injected, or the run's time is up.
func (h *harness) rounds(ctx context.Context, first civil.Date) error {
	state := syncstate.New(h.bq, h.opt.BQProject, h.opt.Dataset)
	pub := h.client.Publisher("dates")
	defer pub.Stop()
	seen := map[string]bool{}
	for round := 1; round <= maxRounds; round++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		if err := h.roundNemeses(ctx, first, round); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		columnBefore := h.columnAdded()
		if err := h.twoPlanners(ctx); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		// Every message delivered three times: two more copies at once.
		for _, m := range h.ps.Messages() {
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			for range 2 {
				r := pub.Publish(ctx, &pubsub.Message{Data: m.Data})
				if _, err := r.Get(ctx); err != nil {
					return err
				}
			}
			h.count(DupDelivery)
		}
		for _, m := range h.ps.Messages() {
			seen[m.ID] = true // the copies are not copied again
		}
		if round >= 2 && h.injected(SigtermLoader) == 0 {
			h.sigtermOne() // until one was running to receive it
		}
		latest, err := h.waitDrained(ctx, state, 120*time.Second, first, round)
		if err != nil {
			return err
		}
		finished := 0
		for d := first; d.Before(first.AddDays(h.opt.Dates)); d = d.AddDays(1) {
			if latest[d].IsFinished {
				finished++
			}
		}
		h.logf("round %d: %d of %d dates finished, %d faults so far; owed: %v", round, finished, h.opt.Dates, h.total(), h.owed())
		if finished > 0 && h.injected(LateFinished) == 0 {
			if err := h.lateIntoFinished(ctx, latest); err != nil {
				return err
			}
			continue
		}
		if finished == h.opt.Dates {
			if h.quotasMet() && columnBefore {
				return nil
			}
			// Everything is synced but faults are still owed: give the
			// loaders work again with more rows for a finished date.
			if err := h.lateIntoFinished(ctx, latest); err != nil {
				return err
			}
			if h.heldOf(holdPublish) < h.opt.HoldsPerKind {
				// and a finished date started over: more publishes to hold.
				if err := h.resyncOne(ctx, latest); err != nil {
					return err
				}
			}
		}
	}
	return fmt.Errorf("%w after %d rounds", errNotDone, maxRounds)
}

func (h *harness) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, v := range h.faults {
		n += v
	}
	return n
}

func (h *harness) quotasMet() bool {
	for _, k := range []string{KillExtract, KillAfterLoad, KillPublish, KillFinish} {
		if h.injected(k) < h.opt.KillsPerKind {
			return false
		}
	}
	if h.opt.FaultRate > 0 {
		for _, k := range transientKinds {
			if h.injected(k) == 0 {
				return false
			}
		}
	}
	if len(h.nemesesOwed()) > 0 {
		return false
	}
	return h.injected(LateBelowCkpt) > 0 && h.injected(PGRestart) >= h.opt.PGRestarts && h.injected(SigtermLoader) > 0
}

// twoPlanners runs two planner processes at once.
func (h *harness) twoPlanners(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, h.opt.PlannerBin)
			cmd.Env = append(append([]string{}, h.env...), "BQ_ENDPOINT="+h.bqEndpoint)
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("planner: %v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	h.count(TwoPlanners)
	return nil
}

// waitDrained waits until every message has been acked. In the first
// round, as soon as a date is finished while others are still being
// synced, it adds a column to the source.
func (h *harness) waitDrained(ctx context.Context, state *syncstate.Store, limit time.Duration, first civil.Date, round int) (map[civil.Date]syncstate.Entry, error) {
	deadline := time.Now().Add(limit)
	for {
		latest, err := state.Latest(ctx, "events")
		if err != nil {
			return nil, err
		}
		if !h.columnAdded() && anyFinished(latest) {
			if err := h.addColumn(ctx, first, round); err != nil {
				return nil, err
			}
		}
		pending := 0
		for _, m := range h.ps.Messages() {
			// Dead letters are published to their own topic, never acked here.
			if m.Acks == 0 && m.Topic == "projects/chaos/topics/dates" {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			return latest, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// lateBelowCheckpoint inserts a row into a date being synced, early in the
// day and with an id just above the day's first: below the date's staged
// position, as a transaction that commits late would.
func (h *harness) lateBelowCheckpoint(ctx context.Context, day civil.Date) error {
	start := day.In(time.UTC)
	return h.pgInsert(ctx, LateBelowCkpt, `INSERT INTO events (id, created_at, kind, note)
SELECT min(id) + 1, $1::timestamptz + interval '30 seconds', 'late', 'below the checkpoint'
FROM events WHERE created_at >= $1::timestamptz AND created_at < $1::timestamptz + interval '1 day'
ON CONFLICT (id) DO NOTHING`, start)
}

// lateIntoFinished adds rows with new, higher ids to a finished date; the
// planner's recheck must re-open it.
func (h *harness) lateIntoFinished(ctx context.Context, latest map[civil.Date]syncstate.Entry) error {
	var dates []civil.Date
	for d, e := range latest {
		if e.IsFinished {
			dates = append(dates, d)
		}
	}
	sort.Slice(dates, func(i, j int) bool { return dates[i].Before(dates[j]) })
	d := dates[len(dates)/2].In(time.UTC)
	return h.pgInsert(ctx, LateFinished, `INSERT INTO events (id, created_at, kind, note)
SELECT (SELECT max(id) FROM events) + 2 * g, $1::timestamptz + g * interval '1 minute', 'late', 'after the finish'
FROM generate_series(1, 5) g`, d.Add(time.Hour))
}

func (h *harness) pgExec(ctx context.Context, kind, sql string, args ...any) error {
	h.pgBusy.Lock() // not while PostgreSQL restarts
	defer h.pgBusy.Unlock()
	conn, err := pgx.Connect(ctx, h.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	if tag.RowsAffected() > 0 {
		h.count(kind)
	}
	return nil
}

// report compares the source and BigQuery id by id and reads the state.
func (h *harness) report(ctx context.Context, first civil.Date) (*Report, error) {
	r := &Report{Faults: h.faults, Dates: h.opt.Dates}
	client := h.bq
	if err := h.finalChecks(ctx); err != nil {
		return nil, err
	}
	src := map[int64]bool{}
	conn, err := pgx.Connect(ctx, h.dsn)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `SELECT id FROM events`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		src[id] = true
	}
	conn.Close(ctx)
	r.SourceRows = int64(len(src))
	ids, err := bq.Rows[idRow](bq.RunQuery(ctx, client, fmt.Sprintf("SELECT id FROM %s", bq.Ref(h.opt.BQProject, h.opt.Dataset, "events"))))
	if err != nil {
		return nil, err
	}
	dest := map[int64]int{}
	for _, row := range ids {
		dest[row.ID]++
	}
	r.BigQueryRows = int64(len(ids))
	for id, n := range dest {
		r.Duplicated += int64(n - 1)
		if !src[id] {
			r.Duplicated++ // a row the source does not have counts as wrong too
		}
	}
	for id := range src {
		if dest[id] == 0 {
			r.Lost++
		}
	}
	h.nem.mu.Lock()
	r.Nemesis = h.nem.n
	for _, row := range h.nem.rows {
		r.Nemesis.LateRows++
		if dest[row.id] == 0 {
			r.Nemesis.LateMissing++
		}
	}
	h.nem.mu.Unlock()
	r.Nemesis.Fenced, r.Nemesis.StaleRan = h.staleLogs()
	latest, err := syncstate.New(client, h.opt.BQProject, h.opt.Dataset).Latest(ctx, "events")
	if err != nil {
		return nil, err
	}
	for d := first; d.Before(first.AddDays(h.opt.Dates)); d = d.AddDays(1) {
		if !latest[d].IsFinished {
			r.Unfinished = append(r.Unfinished, d.String())
		}
	}
	r.DeadLettered, err = h.drainDLQ(ctx)
	return r, err
}

// drainDLQ counts what reached the dead-letter subscription.
func (h *harness) drainDLQ(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var mu sync.Mutex
	n := 0
	err := h.client.Subscriber("dates-dlq").Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		mu.Lock()
		n++
		mu.Unlock()
		m.Ack()
	})
	if err != nil && ctx.Err() == nil {
		return 0, err
	}
	return n, nil
}

// BuildBinaries builds the planner and the loader into dir.
func BuildBinaries(root, dir string) (loader, planner string, err error) {
	cmd := exec.CommandContext(context.Background(), "go", "build", "-o", dir+string(os.PathSeparator), "./loader", "./planner")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return filepath.Join(dir, "loader"), filepath.Join(dir, "planner"), nil
}

// Table formats the fault counts.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-60s %s\n", "fault", "times")
	for _, k := range Kinds {
		fmt.Fprintf(&b, "%-60s %s\n", k, strconv.Itoa(r.Faults[k]))
	}
	return b.String()
}

// Line is the run's summary line.
func (r *Report) Line() string {
	return fmt.Sprintf("chaos: faults=%d dates=%d source_rows=%d bigquery_rows=%d lost=%d duplicated=%d",
		r.TotalFaults(), r.Dates, r.SourceRows, r.BigQueryRows, r.Lost, r.Duplicated)
}

// idRow is one destination row's id.
type idRow struct {
	ID int64 `bigquery:"id"`
}
