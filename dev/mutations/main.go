// Command mutations is `make mutations`: the real planner and loader
// binaries over a table whose rows are inserted into past days, updated,
// deleted and moved to other days, loaders killed meanwhile (see
// internal/mutations). It ends with one line:
//
//	mutations: rounds=R updated=U deleted=D moved=M days_reopened=O rows_reread_per_change=X sweep_runs=W stale=0 missing=0 extra=0 duplicated=0
//
// and exits non-zero when a row is stale, missing, extra or duplicated, or
// a kind of change (or a kill) never happened.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/chaos"
	"github.com/pgbq/pgbq/internal/mutations"
)

func main() {
	var opt mutations.Options
	flag.IntVar(&opt.Rows, "rows", 30_000, "source rows")
	flag.IntVar(&opt.Days, "days", 60, "days of history the rows spread over")
	flag.IntVar(&opt.ChunkSize, "chunk", 200, "SYNC_CHUNK_SIZE")
	flag.IntVar(&opt.Rounds, "rounds", 4, "rounds of changes")
	flag.IntVar(&opt.PerRound, "per-round", 30, "changes of each kind per round (deletes half, moves a third)")
	flag.IntVar(&opt.Loaders, "loaders", 2, "loader processes at once")
	flag.IntVar(&opt.SweepDays, "sweep-days", 31, "SYNC_SWEEP_DAYS")
	flag.DurationVar(&opt.Timeout, "timeout", 15*time.Minute, "give up after")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, err := run(ctx, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutations:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "mutations: inserted=%d kills=%d rows_reread=%d wall_s=%.0f\n", rep.Inserted, rep.Kills, rep.RowsReread, time.Since(start).Seconds())
	fmt.Println(rep.Line())
	if !rep.OK() {
		os.Exit(1)
	}
}

func run(ctx context.Context, opt mutations.Options) (*mutations.Report, error) {
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "pgbq-mutations-")
	if err != nil {
		return nil, err
	}
	opt.WorkDir, opt.Log = work, os.Stderr
	opt.LoaderBin, opt.PlannerBin, err = chaos.BuildBinaries(root, filepath.Join(work, "bin")) //nolint:contextcheck // a build, not stopped by a signal: it ends by itself
	if err != nil {
		return nil, err
	}
	admin := os.Getenv("PG_ADMIN_DSN")
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("connect to PG_ADMIN_DSN: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	db := fmt.Sprintf("mutations_%d", os.Getpid())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return nil, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "DROP DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		return nil, err
	}
	opt.DSN = fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, db)
	opt.BQEndpoint, opt.BQProject, opt.Dataset = os.Getenv("BQ_ENDPOINT"), os.Getenv("BQ_EMU_PROJECT"), db
	rep, err := mutations.Run(ctx, opt)
	if err == nil && rep.OK() {
		os.RemoveAll(work)
	} else {
		fmt.Fprintf(os.Stderr, "mutations: the processes' logs are kept in %s\n", work)
	}
	return rep, err
}
