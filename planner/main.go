// Command planner is the Cloud Run job that finds the dates of the
// configured tables that are not finished and publishes one message per
// date. It is also the operator's tool (planner -h lists the commands).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
	_ "time/tzdata" // zone names for SYNC_TIME_ZONE, also in images without a zone database

	"cloud.google.com/go/civil"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/cli"
	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/pubsubx"
)

// Config is the planner's configuration: config.Planner, where the deploy
// checks read its variables, defaults and validation too.
type Config struct{ config.Planner }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cli.Exit("planner", run(ctx, os.Args[1:], nil, os.Stdout, os.Stderr))
}

// run is the planner; opts (tests pin the clock with app.WithClock) go to
// app.Open.
func run(ctx context.Context, args []string, lookuper envconfig.Lookuper, stdout, logOut io.Writer, opts ...app.Option) error {
	// First of all: an execution with overrides must not send the password
	// or the rows past what the deployment pins (config.Pins).
	pins, args, err := config.TakePins(args)
	if err != nil {
		return cli.Usage(err)
	}
	if err := pins.Check(lookuper); err != nil {
		return cli.Usage(err)
	}
	cl, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		help(stdout, cl)
		return err
	}
	if err != nil {
		return err
	}
	if cl.version {
		fmt.Fprintf(stdout, "planner %s\n", cli.Version)
		return nil
	}
	cmd, dryRun := cl.cmd, cl.dryRun
	if cmd == "check" {
		return check(ctx, stdout, lookuper)
	}
	var cfg Config
	if err := config.Load(ctx, &cfg, lookuper); err != nil {
		return cli.Usage(err)
	}
	publish := (cmd == "" && !dryRun) || cmd == "resync"
	var use pubsubx.Use
	if publish {
		use = pubsubx.Publishes
	}
	if err := cfg.Validate(use); err != nil {
		return cli.Usage(fmt.Errorf("configuration:\n%w", err))
	}
	logger := logging.New(logOut, cfg.Common.LogLevel).With("component", "planner")
	if cmd == "verify" && cl.repair {
		// A repair re-syncs dates: its chunks on a terminal's progress line.
		progress := cli.NewProgress(os.Stderr)
		defer progress.Done()
		logger = cli.WithProgress(logger, progress)
	}
	ctx = logging.With(ctx, logger)
	switch {
	case cmd == "migrate":
		return migrate(ctx, stdout, &cfg.Common)
	case cmd == "status" && !cl.verify, cmd == "resync", cmd == "pause", cmd == "resume":
		return operate(ctx, stdout, &cfg, cl, opts)
	}
	var openOpts []app.Option
	if publish {
		openOpts = append(openOpts, app.WithPublisher())
	}
	// A table that cannot be synced does not stop the others: it is
	// reported (status and verify show why) and the run fails at the end.
	deps, err := app.Open(ctx, &cfg.Common, append(openOpts, opts...)...)
	if err != nil {
		return err
	}
	defer deps.Close()
	var planners []*planner.Planner
	changeErrs := map[string]error{} // tables whose updated-at column cannot serve
	for _, t := range deps.Healthy() {
		i := slices.Index(deps.Tables, t) // its entry in SYNC_TABLES, for the errors
		p := &planner.Planner{Source: t.Source, Dest: t.Warehouse, State: deps.State, Table: t.Config.DestTable,
			InFlight: cfg.InFlight, Queued: cfg.Queued, MaxDates: cfg.MaxDates, RecheckDays: cfg.RecheckDays,
			QuarantineAfter: cfg.QuarantineAfter, Now: deps.Now, Staging: t.Warehouse}
		if deps.Publisher != nil {
			p.Pub = deps.Publisher
		}
		if start, ok := t.Config.Start(); ok {
			p.Start = start
		}
		if p.Changes, err = app.Changes(ctx, &cfg.Common, i, t, deps.State); err != nil {
			changeErrs[p.Table] = err // status and verify still read the table; a run does not plan it
		}
		planners = append(planners, p)
	}
	for _, t := range deps.Tables {
		if t.Broken != nil {
			logger.Error("table not planned", "table", t.Config.DestTable, "error", t.Broken.Error())
		}
	}
	switch {
	case cmd == "verify":
		printBroken(stdout, deps)
		return errors.Join(verify(ctx, stdout, planners, deps, &cfg.Common, cl.fromDate, cl.toDate, cl.repair), deps.Broken())
	case cmd == "status":
		// --verify: the state first, then today's recount of both sides.
		if err := operate(ctx, stdout, &cfg, cl, opts); err != nil {
			return err
		}
		var sum planner.Totals
		var errs []error
		for _, p := range planners {
			if cl.table != "" && p.Table != cl.table {
				continue
			}
			fmt.Fprintf(stdout, "recount %s\n", p.Table)
			tot, err := p.Recount(ctx, stdout)
			if err != nil {
				// One table failing does not hide the others.
				fmt.Fprintf(stdout, "ERROR: %v\n", err)
				errs = append(errs, fmt.Errorf("status of %s: %w", p.Table, err))
				continue
			}
			sum.Dates += tot.Dates
			sum.Finished += tot.Finished
			sum.SourceRows += tot.SourceRows
			sum.BigQueryRows += tot.BigQueryRows
			sum.Duplicates += tot.Duplicates
			sum.Mismatched += tot.Mismatched
		}
		printBroken(stdout, deps)
		fmt.Fprintf(stdout, "status: dates=%d finished=%d source_rows=%d bigquery_rows=%d duplicates=%d mismatched=%d tables=%d broken=%d\n",
			sum.Dates, sum.Finished, sum.SourceRows, sum.BigQueryRows, sum.Duplicates, sum.Mismatched, len(planners), len(deps.Tables)-len(planners))
		return errors.Join(append(errs, deps.Broken())...)
	case dryRun:
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "table\tdate\treason")
		n := 0
		var errs []error
		for _, p := range planners {
			plan, err := p.Plan(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("plan %s: %w", p.Table, err))
				continue
			}
			for _, d := range plan {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Table, d.Date, d.Reason)
			}
			n += len(plan)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "plan: %d dates (dry run, nothing published)\n", n)
		printBroken(stdout, deps)
		for _, err := range errs {
			fmt.Fprintf(stdout, "ERROR: %v\n", err)
		}
		return errors.Join(append(errs, deps.Broken())...)
	default:
		// One table failing does not stop the others; the run fails at
		// the end so the job's execution shows it.
		n := 0
		var errs []error
		for _, p := range planners {
			var plan []planner.Planned
			err := changeErrs[p.Table]
			if err == nil {
				plan, err = p.Run(ctx)
			}
			if err != nil {
				logger.Error("table not planned", "table", p.Table, "error", err.Error())
				errs = append(errs, fmt.Errorf("table %s: %w", p.Table, err))
				continue
			}
			logger.Info("plan published", "table", p.Table, "dates", len(plan))
			// The state after the run, for the dashboard and the alerts.
			if sum, err := p.Summarize(ctx); err != nil {
				logger.Warn("table status not read", "table", p.Table, "error", err.Error())
			} else {
				sum.Log(logger, p.Table)
			}
			n += len(plan)
		}
		fmt.Fprintf(stdout, "plan: %d dates published\n", n)
		return errors.Join(append([]error{deps.Broken()}, errs...)...)
	}
}

// printBroken lists the tables that cannot be synced, with the reason.
func printBroken(w io.Writer, deps *app.Deps) {
	for _, t := range deps.Tables {
		if t.Broken != nil {
			fmt.Fprintf(w, "table %s\nBROKEN: %v\n", t.Config.DestTable, t.Broken)
		}
	}
}

// ErrMismatch makes verify exit non-zero.
var ErrMismatch = errors.New("dates differ between the source and BigQuery")

func verify(ctx context.Context, stdout io.Writer, planners []*planner.Planner, deps *app.Deps, c *config.Common, fromArg, toArg civil.Date, repair bool) error {
	bad := 0
	var errs []error
	for i, p := range planners {
		fmt.Fprintf(stdout, "table %s\n", p.Table)
		n, err := verifyTable(ctx, stdout, p, deps, deps.Healthy()[i], c, fromArg, toArg, repair)
		if err != nil {
			// One table failing does not hide the others.
			fmt.Fprintf(stdout, "ERROR: %v\n", err)
			errs = append(errs, fmt.Errorf("verify %s: %w", p.Table, err))
			continue
		}
		bad += n
	}
	if bad > 0 {
		errs = append(errs, cli.Mismatch(fmt.Errorf("%w: %d of them", ErrMismatch, bad)))
	}
	return errors.Join(errs...)
}

func verifyTable(ctx context.Context, stdout io.Writer, p *planner.Planner, deps *app.Deps, t *app.Table, c *config.Common, fromArg, toArg civil.Date, repair bool) (int, error) {
	from, to, ok, err := p.Range(ctx)
	if err != nil {
		return 0, err
	}
	to = to.AddDays(-1) // by default through yesterday: today is still being synced
	// --from and --to (parsed with the command line) replace the bounds.
	if !fromArg.IsZero() {
		from, ok = fromArg, true
	}
	if !toArg.IsZero() {
		to, ok = toArg, true
	}
	if !ok || to.Before(from) {
		fmt.Fprintln(stdout, "no dates to verify")
		return 0, nil
	}
	var rebuilder planner.Rebuilder
	if repair {
		host, _ := os.Hostname()
		s, err := deps.NewSyncer(c, t, fmt.Sprintf("planner-verify@%s/%d", host, os.Getpid()))
		if err != nil {
			return 0, err
		}
		rebuilder = s
	}
	bad, err := p.Verify(ctx, stdout, from, to, rebuilder)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(stdout, "verify: dates=%d mismatched=%d\n", int(to.DaysSince(from))+1, bad)
	// Duplicates in different dates pass every per-date check; BigQuery
	// finds them reading only the id column.
	repeated, err := t.Warehouse.RepeatedIDs(ctx)
	if err != nil {
		return 0, err
	}
	if repeated > 0 {
		fmt.Fprintf(stdout, "verify: %d ids appear in more than one date: the id column is not unique across dates (each date's copy is still complete)\n", repeated)
	}
	return bad, nil
}

// ErrUnsyncable makes check exit non-zero.
var ErrUnsyncable = errors.New("the table cannot be synced as configured")

// check prints how each column of the configured table would travel to
// BigQuery and fails if any cannot; it needs only PG_* and SYNC_*.
func check(ctx context.Context, stdout io.Writer, lookuper envconfig.Lookuper) error {
	var c config.Common
	if err := config.Load(ctx, &c, lookuper); err != nil {
		return cli.Usage(err)
	}
	c.Normalize()
	if err := c.ValidateSource(); err != nil {
		return cli.Usage(fmt.Errorf("configuration:\n%w", err))
	}
	tables, err := c.TableConfigs()
	if err != nil {
		return err
	}
	checker, err := app.NewChecker(ctx, &c)
	if err != nil {
		return err
	}
	defer checker.Close()
	ncols, bad := 0, 0
	for i, t := range tables {
		fmt.Fprintf(stdout, "table %s -> %s\n", t.Table, t.DestTable)
		cols, _, err := pgsource.Check(ctx, c.PG, t.Spec())
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "column\tpostgresql\tbigquery\tnote")
		for _, col := range cols {
			bqType, note := col.BigQueryType, col.Note
			if col.Problem != "" {
				bqType, note = "-", "CANNOT SYNC: "+col.Problem
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", col.Name, col.SourceType, bqType, note)
		}
		tw.Flush()
		if n, err := pgsource.CountUndatedOf(ctx, c.PG, t.Spec()); err == nil {
			fmt.Fprintf(stdout, "rows without a date: %d (never synced: docs/types.md, \"Rows without a date\")\n", n)
		}
		// The verdict is the loader's own validation (app.Checker).
		rep, err := checker.Check(ctx, i, t)
		if err != nil {
			return err
		}
		if rep.Changes != "" {
			fmt.Fprintf(stdout, "changes: %s\n", rep.Changes)
		}
		for _, w := range rep.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(stdout, "refused: %v\n", p)
		}
		bad += len(rep.Problems)
		ncols += len(cols)
	}
	fmt.Fprintf(stdout, "check: columns=%d unsyncable=%d\n", ncols, bad)
	if bad > 0 {
		return cli.Mismatch(ErrUnsyncable)
	}
	return nil
}
