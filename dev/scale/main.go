// Command scale is `make scale` (see internal/scale): a back-fill of many
// small dates with many loaders on the local stack, through the BigQuery
// fidelity layer with job latency, dispatched by pull (the deployed
// back-fill design) or push (the old design). It ends with one line:
//
//	scale: dates=D loaders=M job_latency_s=L wall_s=W ideal_s=I efficiency=E dead_lettered=0 failed=0 lost=0 duplicated=0 publish_conflicts=C rate_limited=R deliveries_per_date=P
//
// It exits non-zero when a pull run dead-lettered, failed, lost or
// duplicated anything (a push run is expected to dead-letter: it shows
// why push is not the back-fill design).
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/scale"
	"github.com/pgbq/pgbq/internal/syncstate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opt := scale.Options{Log: os.Stderr}
	flag.StringVar(&opt.Mode, "mode", scale.Pull, "dispatch: pull (StreamingPull workers with flow control) or push (Cloud Run stand-in)")
	flag.IntVar(&opt.Dates, "dates", 200, "dates in the back-fill")
	flag.IntVar(&opt.Loaders, "loaders", 20, "loaders (pull workers, or Cloud Run instances with one request each)")
	flag.IntVar(&opt.Outstanding, "outstanding", 2, "pull: dates one loader works at once (LOADER_CONCURRENCY; the back-fill pool's default)")
	flag.IntVar(&opt.RowsPerDate, "rows-per-date", 200, "rows on each date")
	flag.IntVar(&opt.ChunkSize, "chunk", 100, "SYNC_CHUNK_SIZE")
	flag.DurationVar(&opt.JobLatency, "job-latency", 3*time.Second, "how long each BigQuery job is pending and running (fidelity layer); push: default 3s x time-scale")
	flag.Float64Var(&opt.TimeScale, "time-scale", 0.01, "push: multiply Cloud Run's 10 s queue wait, the 600 s ack deadline, the 10-600 s retry backoff and the 480 s loader budget by this")
	flag.IntVar(&opt.MaxDatesPerRun, "max-dates-per-run", 500, "the planner's cap per run (PLANNER_MAX_DATES)")
	flag.StringVar(&opt.LoaderLog, "loader-log", "error", "the loaders' log level (info shows each date's chunk, publish and duration lines)")
	flag.DurationVar(&opt.Timeout, "timeout", 30*time.Minute, "give up after")
	flag.Parse()
	latencySet := false
	flag.Visit(func(f *flag.Flag) { latencySet = latencySet || f.Name == "job-latency" })
	if opt.Mode == scale.Push && !latencySet {
		// Production's 3 s jobs, on the same clock as the scaled push times.
		opt.JobLatency = time.Duration(float64(3*time.Second) * opt.TimeScale)
	}
	rep, err := run(ctx, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
	if rep.Note != "" {
		fmt.Println(rep.Note)
	}
	fmt.Println(rep.Line())
	if opt.Mode == scale.Pull && (rep.DeadLettered+rep.Failed+rep.Unfinished > 0 || rep.Lost+rep.Duplicated > 0) {
		os.Exit(1)
	}
}

// run starts a fidelity layer of its own in front of the emulator (for its
// counters), a dataset behind it, and the run. dev/scale.sh sets the
// variables.
func run(ctx context.Context, opt scale.Options) (*scale.Report, error) {
	emu, dsn := os.Getenv("BQ_EMULATOR_ENDPOINT"), os.Getenv("PG_ADMIN_DSN")
	if emu == "" || dsn == "" {
		return nil, fmt.Errorf("BQ_EMULATOR_ENDPOINT and PG_ADMIN_DSN are not set: run it with `make scale`")
	}
	fopt := bqfidelity.Options{JobLatency: opt.JobLatency}
	if opt.Mode == scale.Push {
		// BigQuery's rates on the same scaled clock as the push times: 5
		// table writes per 10 s become 5 per 10 s × scale, and so on.
		per := func(n int) int { return int(math.Ceil(float64(n) / opt.TimeScale)) }
		fopt.TableMetadataUpdatesPer10s, fopt.PartitionModsPer10s = per(5), per(50)
		fopt.TablesInsertPerSecond, fopt.DMLPer10s = per(10), per(25)
	}
	proxy, err := bqfidelity.Start(emu, fopt) //nolint:contextcheck // the proxy lives until Close
	if err != nil {
		return nil, err
	}
	defer proxy.Close() //nolint:contextcheck // Close ends the proxy's own work
	project := os.Getenv("BQ_EMU_PROJECT")
	if project == "" {
		project = "pgbq-local"
	}
	opt.BQ = bq.Config{Project: project, Dataset: "scale", Location: "US", Endpoint: proxy.Endpoint()}.WithDefaults()
	opt.PGDSN, opt.Proxy = dsn, proxy
	setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	client, err := bq.NewClient(setup, opt.BQ)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if err := bq.EnsureDatasets(setup, client, opt.BQ); err != nil {
		return nil, err
	}
	// What `planner migrate` does once per deploy.
	if err := syncstate.New(client, opt.BQ.Project, opt.BQ.StateDataset).Migrate(setup); err != nil {
		return nil, err
	}
	return scale.Run(ctx, opt)
}
