package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

const (
	mainTable     = "activity_logs"
	shuffledTable = "activity_logs_shuffled"
	usPerDay      = int64(86_400_000_000)
)

// base is day 0 of the bench tables: every day is long closed, so each
// date the loader syncs is finished, not just published.
var base = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// layout places rows 1..rows over days days: day bigDay holds bigRows
// rows, the others share the rest evenly. Ids rise with time.
type layout struct {
	rows, bigRows, days, bigDay int64
	small                       int64 // rows outside the big day
	b0                          int64 // rows before the big day (ids 1..b0)
}

func newLayout(rows, bigRows, days int64) (layout, error) {
	l := layout{rows: rows, bigRows: bigRows, days: days, bigDay: (days - 1) / 2, small: rows - bigRows}
	if days < 2 || bigRows < 1 || l.small < days-1 {
		return l, fmt.Errorf("bad layout: %d rows, %d on the big day, %d days", rows, bigRows, days)
	}
	// A small row s (0-based) lies at s*(days-1)/small days; those at or
	// past the big day's start move one day later.
	l.b0 = (l.bigDay*l.small + days - 2) / (days - 1)
	return l, nil
}

func (l layout) day(i int64) time.Time { return base.AddDate(0, 0, int(i)) }

// createdAtUS is the SQL for created_at in microseconds after base, for
// row g of the main table.
func (l layout) createdAtUS() string {
	return fmt.Sprintf(`CASE WHEN g > %[1]d AND g <= %[1]d + %[2]d
  THEN %[3]d * %[4]d + (g - 1 - %[1]d) * %[4]d / %[2]d
  ELSE (x.q / %[5]d) * %[4]d + (x.q %% %[5]d) * %[4]d / %[5]d
       + CASE WHEN x.s >= %[1]d THEN %[4]d ELSE 0 END
END`, l.b0, l.bigRows, l.bigDay, usPerDay, l.small)
}

func createTableSQL(name string) string {
	return fmt.Sprintf(`CREATE TABLE %s (
  id bigint NOT NULL,
  user_id bigint NOT NULL,
  action text NOT NULL,
  path text,
  payload jsonb,
  ip inet,
  amount numeric(12,2),
  created_at timestamptz NOT NULL
)`, name)
}

func (l layout) insertMainSQL(lo, hi int64) string {
	return fmt.Sprintf(`INSERT INTO %s
SELECT g, g %% 5000, (ARRAY['view','click','login','logout','purchase'])[1 + g %% 5], '/page/' || (g %% 300),
       jsonb_build_object('session', g %% 9973, 'ok', g %% 11 <> 0),
       ('10.' || (g %% 200) || '.' || (g %% 250) || '.' || (g %% 240))::inet,
       CASE WHEN g %% 3 = 0 THEN (g %% 100000) / 100.0 END,
       timestamptz '%s' + interval '1 microsecond' * (%s)
FROM generate_series(%d::bigint, %d::bigint) g,
     LATERAL (SELECT s, s * %d AS q FROM (SELECT CASE WHEN g <= %d THEN g - 1 ELSE g - 1 - %d END AS s) y) x`,
		mainTable, base.Format("2006-01-02 15:04:05+00"), l.createdAtUS(), lo, hi, l.days-1, l.b0, l.bigRows)
}

// shuffledSQL copies rows lo..hi of the main table with id replaced by
// (id*mult mod rows)+1, a bijection on 1..rows, so ids do not rise with
// time; created_at and the rows' physical order stay as they were.
func (l layout) shuffledSQL(lo, hi, mult int64) string {
	return fmt.Sprintf(`INSERT INTO %s
SELECT (id * %d) %% %d + 1, user_id, action, path, payload, ip, amount, created_at
FROM %s
WHERE id >= %d AND id <= %d`,
		shuffledTable, mult, l.rows, mainTable, lo, hi)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// shuffleMultiplier is odd, large and coprime with rows.
func shuffleMultiplier(rows int64) int64 {
	m := int64(2654435761)
	for gcd(m, rows) != 1 {
		m += 2
	}
	return m
}

// exec runs each statement on its own connection, at most two at a time
// (the machine has two cores).
func execParallel(ctx context.Context, dsn string, stmts ...[]string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for _, seq := range stmts {
		g.Go(func() error {
			conn, err := pgx.Connect(gctx, dsn)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(gctx))
			for _, s := range append([]string{"SET synchronous_commit = off", "SET maintenance_work_mem = '512MB'"}, seq...) {
				if _, err := conn.Exec(gctx, s); err != nil {
					return fmt.Errorf("%w\nin: %.300s", err, s)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func one(s ...string) []string { return s }

// seed builds both tables and reports how long each step took.
func seed(ctx context.Context, dsn string, l layout) error {
	t0 := time.Now()
	step := func(name string) {
		logf("seed: %-44s %6.1f s (since start)", name, time.Since(t0).Seconds())
	}
	if err := execParallel(ctx, dsn, one(createTableSQL(mainTable), createTableSQL(shuffledTable))); err != nil {
		return err
	}
	half := l.rows / 2
	if err := execParallel(ctx, dsn,
		one(l.insertMainSQL(1, half)), one(l.insertMainSQL(half+1, l.rows))); err != nil {
		return fmt.Errorf("insert %s: %w", mainTable, err)
	}
	step(fmt.Sprintf("%s: %d rows inserted", mainTable, l.rows))
	mult := shuffleMultiplier(l.rows)
	if err := execParallel(ctx, dsn,
		one(l.shuffledSQL(1, half, mult)), one(l.shuffledSQL(half+1, l.rows, mult))); err != nil {
		return fmt.Errorf("insert %s: %w", shuffledTable, err)
	}
	step(shuffledTable + ": rows inserted")
	var idx [][]string
	for _, t := range []string{mainTable, shuffledTable} {
		idx = append(idx,
			one(fmt.Sprintf("CREATE UNIQUE INDEX %[1]s_pkey ON %[1]s (id)", t)),
			one(fmt.Sprintf("CREATE INDEX %[1]s_created_at_id ON %[1]s (created_at, id)", t)))
	}
	if err := execParallel(ctx, dsn, idx...); err != nil {
		return fmt.Errorf("create indexes: %w", err)
	}
	for _, t := range []string{mainTable, shuffledTable} {
		if err := execParallel(ctx, dsn, one(fmt.Sprintf("ALTER TABLE %[1]s ADD CONSTRAINT %[1]s_pkey PRIMARY KEY USING INDEX %[1]s_pkey", t))); err != nil {
			return err
		}
	}
	step("indexes: primary key (id), (created_at, id)")
	if err := execParallel(ctx, dsn,
		one("VACUUM (FREEZE, ANALYZE) "+mainTable), one("VACUUM (FREEZE, ANALYZE) "+shuffledTable)); err != nil {
		return err
	}
	step("VACUUM (FREEZE, ANALYZE)")

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n, big, minID, maxID int64
	var size string
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE created_at >= $1 AND created_at < $2),
		pg_size_pretty(pg_total_relation_size('`+mainTable+`')) FROM `+mainTable,
		l.day(l.bigDay), l.day(l.bigDay+1)).Scan(&n, &big, &size); err != nil {
		return err
	}
	if n != l.rows || big != l.bigRows {
		return fmt.Errorf("%s holds %d rows (%d on the big day), want %d (%d)", mainTable, n, big, l.rows, l.bigRows)
	}
	logf("seed: %s: %d rows over %d days (%s .. %s), %d rows on %s, %s with indexes",
		mainTable, n, l.days, l.day(0).Format(time.DateOnly), l.day(l.days-1).Format(time.DateOnly),
		big, l.day(l.bigDay).Format(time.DateOnly), size)
	var shuffledRows, sbig int64
	var corr float64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE created_at >= $1 AND created_at < $2),
		min(id), max(id), pg_size_pretty(pg_total_relation_size('`+shuffledTable+`')) FROM `+shuffledTable,
		l.day(l.bigDay), l.day(l.bigDay+1)).Scan(&shuffledRows, &sbig, &minID, &maxID, &size); err != nil {
		return err
	}
	if shuffledRows != l.rows || sbig != l.bigRows || minID != 1 || maxID != l.rows {
		return fmt.Errorf("%s holds %d rows (%d on the big day, ids %d..%d), want %d (%d, 1..%d)",
			shuffledTable, shuffledRows, sbig, minID, maxID, l.rows, l.bigRows, l.rows)
	}
	if err := conn.QueryRow(ctx, `SELECT correlation FROM pg_stats WHERE tablename = $1 AND attname = 'id'`, shuffledTable).Scan(&corr); err != nil {
		return err
	}
	logf("seed: %s: %d rows, %d on %s, ids %d..%d permuted (id*%d mod %d + 1; pg_stats id correlation %.3f), %s with indexes",
		shuffledTable, shuffledRows, sbig, l.day(l.bigDay).Format(time.DateOnly), minID, maxID, mult, l.rows, corr, size)
	logf("seed: total %.1f s", time.Since(t0).Seconds())
	return nil
}
