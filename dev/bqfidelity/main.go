// Command bqfidelity hosts the BigQuery fidelity proxy (internal/bqfidelity)
// in front of the bqemulator for multi-process runs (make demo, chaos,
// bench). It prints its endpoint, and writes it to --endpoint-file if given.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgbq/pgbq/internal/bqfidelity"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bqfidelity:", err)
		os.Exit(1)
	}
}

func run() error {
	emulator := flag.String("emulator", "", `the emulator's REST endpoint, like "http://127.0.0.1:9050/bigquery/v2/"`)
	latency := flag.Duration("job-latency", 100*time.Millisecond, "how long each job is PENDING then RUNNING before it takes effect")
	streamDelay := flag.Duration("streaming-visibility-delay", 0, "how long rows streamed with insertAll stay invisible to queries (0: visible at once)")
	cancelLoses := flag.Float64("cancel-loses", 0, "the share (0..1) of jobs.cancel requests answered while the job goes on to complete")
	endpointFile := flag.String("endpoint-file", "", "write the proxy's endpoint to this file once it listens")
	flag.Parse()
	if *emulator == "" {
		return fmt.Errorf("--emulator is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	p, err := bqfidelity.Start(*emulator, bqfidelity.Options{JobLatency: *latency, StreamingVisibilityDelay: *streamDelay, CancelLoses: *cancelLoses, Logf: logf})
	if err != nil {
		return err
	}
	defer p.Close()
	if *endpointFile != "" {
		tmp := *endpointFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(p.Endpoint()+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, *endpointFile); err != nil {
			return err
		}
	}
	fmt.Printf("bqfidelity: listening on %s (emulator %s, job latency %s)\n", p.Endpoint(), *emulator, *latency)
	<-ctx.Done()
	s := p.Stats()
	fmt.Printf("bqfidelity: jobs=%v failed=%v conflicts=%d dml_queue_full=%d rate_limited=%v duplicate_409=%d cancelled=%d\n",
		s.JobsRun, s.JobsFailed, s.TransactionConflicts, s.DMLQueueFull, s.RateLimited, s.Duplicate409, s.JobsCancelled)
	return nil
}
