package mutations

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// rounds back-fills the table, then changes it round after round, each
// followed by a planner run and its dates drained while a loader is
// killed; then the sweep runs the docs promise cover the history.
func (h *harness) rounds(ctx context.Context) error {
	// The back-fill: until a run plans nothing.
	for i := 0; ; i++ {
		n, err := h.planAndDrain(ctx, false)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if i == 5 {
			return fmt.Errorf("the back-fill still planned %d dates after %d runs", n, i+1)
		}
	}
	h.logf("back-filled")
	h.startedAt = time.Now()
	for r := 1; r <= h.opt.Rounds; r++ {
		if err := h.mutate(ctx, r); err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		n, err := h.planAndDrain(ctx, true)
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		h.rep.Rounds = r
		h.logf("round %d: %d dates planned; so far inserted=%d updated=%d deleted=%d moved=%d kills=%d",
			r, n, h.rep.Inserted, h.rep.Updated, h.rep.Deleted, h.rep.Moved, h.rep.Kills)
	}
	// The history the sweep covers: the first day through yesterday.
	days := h.last.DaysSince(h.first) + 2
	h.rep.SweepRuns = (days + h.opt.SweepDays - 1) / h.opt.SweepDays
	for i := range h.rep.SweepRuns {
		n, err := h.planAndDrain(ctx, false)
		if err != nil {
			return fmt.Errorf("sweep run %d: %w", i+1, err)
		}
		h.logf("sweep run %d of %d: %d dates planned", i+1, h.rep.SweepRuns, n)
	}
	return nil
}

// mutate makes one round's changes, seeded by the round so that runs
// repeat: inserts into past days, updates of recent rows and of rows
// anywhere, deletes, and rows moved to another day. It then waits until
// the source's clock is past the changes by more than the changes grace,
// as an hourly schedule would be.
func (h *harness) mutate(ctx context.Context, round int) error {
	conn, err := pgx.Connect(ctx, h.opt.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	n := h.opt.PerRound
	first := h.first.In(time.UTC)
	span := fmt.Sprintf("%d days", h.opt.Days)
	recent := h.last.AddDays(-2).In(time.UTC)
	steps := []struct {
		count *int
		sql   string
		args  []any
	}{
		{&h.rep.Inserted, `INSERT INTO orders (id, created_at, customer, status, amount, note)
SELECT md5('round ' || $4::int || ' row ' || g)::uuid, $1::timestamptz + random() * $2::interval, g, 'late', g, 'inserted'
FROM generate_series(1, $3) g`, []any{first, span, n, round}},
		{&h.rep.Updated, `UPDATE orders SET status = 'recent ' || $1::int, amount = amount + 1
WHERE id IN (SELECT id FROM orders WHERE created_at >= $2 ORDER BY random() LIMIT $3)`, []any{round, recent, n}},
		{&h.rep.Updated, `UPDATE orders SET note = 'scattered ' || $1::int
WHERE id IN (SELECT id FROM orders ORDER BY random() LIMIT $2)`, []any{round, n}},
		{&h.rep.Deleted, `DELETE FROM orders WHERE id IN (SELECT id FROM orders ORDER BY random() LIMIT $1)`, []any{max(1, n/2)}},
		{&h.rep.Moved, `UPDATE orders SET created_at = $1::timestamptz + random() * $2::interval
WHERE id IN (SELECT id FROM orders ORDER BY random() LIMIT $3)`, []any{first, span, max(1, n/3)}},
	}
	if _, err := conn.Exec(ctx, `SELECT setseed($1)`, float64(round)/100); err != nil {
		return err
	}
	for _, s := range steps {
		tag, err := conn.Exec(ctx, s.sql, s.args...)
		if err != nil {
			return fmt.Errorf("change the source: %w", err)
		}
		*s.count += int(tag.RowsAffected())
	}
	return h.waitClock(ctx, conn, 3*time.Second)
}

// waitClock waits until PostgreSQL's clock has moved past d from now.
func (h *harness) waitClock(ctx context.Context, conn *pgx.Conn, d time.Duration) error {
	var start time.Time
	if err := conn.QueryRow(ctx, `SELECT now()`).Scan(&start); err != nil {
		return err
	}
	for {
		var now time.Time
		if err := conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
			return err
		}
		if now.Sub(start) > d {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// planAndDrain runs the planner once and waits until every message has
// been acked; with kill, a loader is killed once while dates are pending.
// It returns how many dates the run planned.
func (h *harness) planAndDrain(ctx context.Context, kill bool) (int, error) {
	before := len(h.local.Fake.Messages())
	logf, err := os.OpenFile(filepath.Join(h.opt.WorkDir, "planner.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := h.command(ctx, h.opt.PlannerBin)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("planner: %v (see %s)", err, filepath.Join(h.opt.WorkDir, "planner.log"))
	}
	planned := len(h.local.Fake.Messages()) - before
	deadline := time.Now().Add(3 * time.Minute)
	killed := !kill || planned == 0
	for start := time.Now(); ; {
		pending := 0
		for _, m := range h.local.Fake.Messages() {
			if m.Acks == 0 {
				pending++
			}
		}
		if pending == 0 {
			return planned, nil
		}
		if !killed && time.Since(start) > 700*time.Millisecond {
			// A loader has had time to take a date and read into it.
			killed = h.kill(h.rep.Rounds)
		}
		if time.Now().After(deadline) {
			return planned, fmt.Errorf("%d messages still pending after 3 minutes (loader logs in %s)", pending, h.opt.WorkDir)
		}
		select {
		case <-ctx.Done():
			return planned, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
