package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/cli"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/pubsubx"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// operate runs status (without --verify), resync, pause and resume. They
// need only BigQuery's state dataset (and Pub/Sub for resync): never
// PostgreSQL, so they work while the source is down.
func operate(ctx context.Context, stdout io.Writer, cfg *Config, cl *cmdLine, opts []app.Option) error {
	clock := &app.Deps{Now: time.Now}
	for _, o := range opts {
		o(clock)
	}
	tables, err := cfg.Common.TableConfigs()
	if err != nil {
		return cli.Usage(err)
	}
	client, err := bq.NewClient(ctx, cfg.Common.BQ)
	if err != nil {
		return err
	}
	defer client.Close()
	store := syncstate.New(client, cfg.Common.BQ.Project, cfg.Common.BQ.StateDataset).WithClock(clock.Now)
	if err := store.Check(ctx); err != nil {
		return err
	}
	var pub planner.Publisher
	if cl.cmd == "resync" {
		ps, err := pubsubx.NewClient(ctx, cfg.Common.PubSub)
		if err != nil {
			return err
		}
		defer ps.Close()
		p := pubsubx.NewPublisher(ps, cfg.Common.PubSub.Topic)
		defer p.Stop()
		pub = p
	}
	var planners []*planner.Planner
	var names []string
	for _, t := range tables {
		names = append(names, t.DestTable)
		if cl.table != "" && t.DestTable != cl.table {
			continue
		}
		p := &planner.Planner{State: store, Pub: pub, Table: t.DestTable, Now: clock.Now,
			Staging: bq.NewStagingTables(client, cfg.Common.BQ, t.DestTable)}
		if t.UpdatedAt != "" {
			// What status says of the table; nothing here reads changes.
			p.Changes = &planner.Changes{Column: t.UpdatedAt, Grace: cfg.Common.Sync.ChangesGrace, SweepDays: cfg.Common.Sync.SweepDays}
		}
		if start, ok := t.Start(); ok {
			p.Start = start
		}
		planners = append(planners, p)
	}
	if len(planners) == 0 {
		return cli.Usagef("--table %q is not a configured table (tables: %s)", cl.table, strings.Join(names, ", "))
	}
	host, _ := os.Hostname()
	writer := fmt.Sprintf("planner-%s@%s/%d", cl.cmd, host, os.Getpid())
	switch cl.cmd {
	case "resync":
		return resync(ctx, stdout, planners[0], cl, writer)
	case "pause", "resume":
		p := planners[0]
		if err := p.SetPaused(ctx, cl.cmd == "pause", cl.reason, writer); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: table %s\n", map[string]string{"pause": "paused", "resume": "resumed"}[cl.cmd], p.Table)
		return nil
	}
	q := planner.StatusQuery{From: cl.fromDate, To: cl.toDate, State: cl.state, JSON: cl.format == "json"}
	var errs []error
	for _, p := range planners {
		if _, err := p.Status(ctx, stdout, q); err != nil {
			errs = append(errs, fmt.Errorf("status of %s: %w", p.Table, err))
		}
	}
	return errors.Join(errs...)
}

func resync(ctx context.Context, stdout io.Writer, p *planner.Planner, cl *cmdLine, writer string) error {
	reason := cl.reason
	if reason == "" {
		reason = "by an operator"
	}
	done, err := p.Resync(ctx, cl.fromDate, cl.toDate, reason, writer)
	n := 0
	for _, r := range done {
		if r.Done {
			n++
			fmt.Fprintf(stdout, "%s  %s  re-opened (was %s) and published\n", p.Table, r.Date, r.Prev)
		} else {
			fmt.Fprintf(stdout, "%s  %s  left alone: %s\n", p.Table, r.Date, r.Skip)
		}
	}
	fmt.Fprintf(stdout, "resync: %d dates re-opened and published\n", n)
	return err
}
