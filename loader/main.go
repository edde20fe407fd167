// Command loader is the Cloud Run service that syncs one (table, date) per
// Pub/Sub message: push requests by default, or pulling from a
// subscription (--pull) for local runs, or one date at once (--date).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
	_ "time/tzdata" // zone names for SYNC_TIME_ZONE, also in images without a zone database

	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/cli"
	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/loader"
	"github.com/pgbq/pgbq/internal/logging"
)

// Config is the loader's configuration: config.Loader, where the deploy
// checks read its variables, defaults and validation too.
type Config struct{ config.Loader }

// MaxBudget is config.MaxLoaderBudget.
const MaxBudget = config.MaxLoaderBudget

// memoryLimit is the Go heap's soft limit for each date worked at once
// (LOADER_CONCURRENCY), unless GOMEMLIMIT says otherwise. A date holds
// about 2 × pgsource.MaxBatchBytes of read rows and loader.BytesInFlight
// of encoded chunks (and one chunk) at its peak, plus encoder and
// connection buffers a few times the widest row: about 200 MB for 5 MB
// rows; without a limit the collector lets the heap grow to twice that
// before collecting (measured: 591 MB RSS for 5 MB rows, 252–276 MB with it).
const memoryLimit = 224 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cli.Exit("loader", run(ctx, os.Args[1:], nil, os.Stdout))
}

const about = "syncs one (table, date) per Pub/Sub message: push requests by default"

const examples = `  loader                                    serve push requests on PORT (what Cloud Run runs)
  loader --pull --exit-when-idle 30s        pull from PUBSUB_SUBSCRIPTION until the queue is empty
  loader --date 2024-03-01 --table orders   sync one date now, without Pub/Sub (progress on a terminal)
`

// run is the loader; opts (tests pin the clock with app.WithClock) go to
// app.Open.
func run(ctx context.Context, args []string, lookuper envconfig.Lookuper, stdout io.Writer, opts ...app.Option) error {
	// As the planner: nothing reaches past what the deployment pins.
	pins, args, err := config.TakePins(args)
	if err != nil {
		return cli.Usage(err)
	}
	if err := pins.Check(lookuper); err != nil {
		return cli.Usage(err)
	}
	fs := flag.NewFlagSet("loader", flag.ContinueOnError)
	pull := fs.Bool("pull", false, "pull messages from PUBSUB_SUBSCRIPTION instead of serving push requests")
	idle := fs.Duration("exit-when-idle", 0, "with --pull: exit once no message has arrived for this long (0: never)")
	date := fs.String("date", "", "sync this one date (YYYY-MM-DD) of every table (or --table) now, without Pub/Sub, and exit")
	table := fs.String("table", "", "with --date: only this table (its destination name)")
	version := fs.Bool("version", false, "print the version and exit")
	if err := cli.Parse(fs, args, 0); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cli.Help(stdout, "loader", about, fs, nil, &Config{}, cli.LoaderExitCodes, examples)
		}
		return err
	}
	if *version {
		fmt.Fprintf(stdout, "loader %s\n", cli.Version)
		return nil
	}
	if *table != "" && *date == "" {
		return cli.Usagef("--table needs --date")
	}
	if _, err := time.Parse(time.DateOnly, *date); *date != "" && err != nil {
		return cli.Usagef("--date %q is not a date (YYYY-MM-DD)", *date)
	}
	var cfg Config
	if err := config.Load(ctx, &cfg, lookuper); err != nil {
		return cli.Usage(err)
	}
	mode := config.Serve
	switch {
	case *date != "":
		mode = config.Once
	case *pull:
		mode = config.Pull
	}
	if err := cfg.Validate(mode); err != nil {
		return cli.Usage(fmt.Errorf("configuration:\n%w", err))
	}
	logger := logging.New(stdout, cfg.Common.LogLevel).With("component", "loader")
	var progress *cli.Progress
	if *date != "" {
		progress = cli.NewProgress(os.Stderr)
		defer progress.Done()
		logger = cli.WithProgress(logger, progress)
	}
	ctx = logging.With(ctx, logger)

	// The loader starts whatever one table's state is: a broken table's
	// messages are recorded failed with the reason and acked.
	var openOpts []app.Option
	if mode.PubSub() != 0 {
		openOpts = append(openOpts, app.WithPublisher())
	}
	deps, err := app.Open(ctx, &cfg.Common, append(openOpts, opts...)...)
	if err != nil {
		return err
	}
	defer deps.Close()
	host, _ := os.Hostname()
	svc := &loader.Service{Syncers: map[string]*loader.Syncer{}, Pub: deps.Publisher, Budget: cfg.Budget,
		Control: loader.CachedControl(deps.State, 30*time.Second), TraceProject: cfg.Common.PubSub.Project}
	for _, t := range deps.Tables {
		syncer, err := deps.NewSyncer(&cfg.Common, t, fmt.Sprintf("loader@%s/%d", host, os.Getpid()))
		if err != nil {
			return err
		}
		svc.Syncers[t.Config.DestTable] = syncer
	}
	switch {
	case mode == config.Once:
		return syncDate(ctx, svc, *date, *table, progress)
	case *pull:
		return receive(ctx, svc, deps, cfg, *idle)
	default:
		return serve(ctx, logger, svc, cfg.Port)
	}
}

// syncDate syncs one date of each table in this process until it is
// published or finished; on a terminal, progress shows the rows left.
func syncDate(ctx context.Context, svc *loader.Service, date, table string, progress *cli.Progress) error {
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return cli.Usagef("--date %q is not a date (YYYY-MM-DD)", date)
	}
	if table != "" {
		if _, ok := svc.Syncers[table]; !ok {
			return cli.Usagef("--table %q is not a configured table", table)
		}
	}
	// A table that fails does not stop the others; the run fails at the end.
	var errs []error
	for name, syncer := range svc.Syncers {
		if table != "" && name != table {
			continue
		}
		log := logging.From(ctx).With("table", name, "sync_date", date)
		if reason, err := svc.Refusal(ctx, name, day); err != nil || reason != "" {
			if err == nil {
				err = fmt.Errorf("date refused: %s", reason)
			}
			errs = append(errs, fmt.Errorf("table %s: %w", name, err))
			continue
		}
		if progress.Active() && syncer.Broken == nil {
			// The day's rows, for "rows left": one count, only for a person watching.
			if n, err := syncer.Source.CountDay(ctx, day); err == nil {
				progress.Expect(n)
			}
		}
		for {
			out, err := syncer.Sync(logging.With(ctx, log), day, time.Now().Add(svc.Budget))
			if err != nil {
				errs = append(errs, fmt.Errorf("table %s: %w", name, err))
				break
			}
			log.Info("date processed", "outcome", out.String())
			if out != loader.Continue {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// serve answers Pub/Sub push requests until ctx ends (SIGTERM), then stops
// within Cloud Run's 10 s: in-flight dates stop at their next safe point
// and answer 503, so Pub/Sub redelivers them.
func serve(ctx context.Context, logger *slog.Logger, svc *loader.Service, port string) error {
	srv := &http.Server{
		Handler:           svc.PushHandler(ctx, logger),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", ":"+port)
	if err != nil {
		return fmt.Errorf("listen on PORT %s: %w", port, err)
	}
	// PORT=0 (tests, local runs) takes any free port: the log says which.
	logger.Info("serving push requests", "port", fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// ctx has ended: the shutdown gets a deadline of its own.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	logger.Info("shutting down")
	return srv.Shutdown(shutdownCtx) //nolint:contextcheck // see above
}

// receive pulls messages from PUBSUB_SUBSCRIPTION (see loader.Receive).
func receive(ctx context.Context, svc *loader.Service, deps *app.Deps, cfg Config, idle time.Duration) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		// Each date worked at once holds its own chunks.
		debug.SetMemoryLimit(memoryLimit * int64(cfg.Concurrency))
	}
	return loader.Receive(ctx, deps.PubSub.Subscriber(cfg.Common.PubSub.Subscription), svc, cfg.Concurrency, idle)
}
