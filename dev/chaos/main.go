// Command chaos is `make chaos`: a full-size fault-injection run of the
// real planner and loader binaries against PostgreSQL, the BigQuery
// emulator and pstest (see internal/chaos). It prints the faults injected
// and ends with one line:
//
//	chaos: faults=F dates=D source_rows=S bigquery_rows=B lost=L duplicated=X
//
// Before it, a line of BigQuery's own nemeses (internal/chaos/nemesis.go):
//
//	chaos-nemesis: held_jobs=H stale_jobs=S fenced=F schema_changes=C resyncs=R pauses=P hidden_state_reads=V finished_checks=N finished_wrong=0
//
// It exits non-zero when a row was lost or duplicated, a date is left
// unfinished, a message was dead-lettered, a fault kind or nemesis never
// happened, a finished date was found wrong or a late row is not in
// BigQuery.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pgbq/pgbq/internal/chaos"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "source rows")
	dates := flag.Int("dates", 10, "dates the rows spread over")
	chunk := flag.Int("chunk", 10_000, "SYNC_CHUNK_SIZE")
	loaders := flag.Int("loaders", 3, "loader processes at once")
	kills := flag.Int("kills-per-moment", 13, "kill -9s at each of the four moments (4x this in all)")
	restarts := flag.Int("pg-restarts", 2, "PostgreSQL restarts")
	faultRate := flag.Float64("fault-rate", 0.03, "share of BigQuery requests that fail")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after")
	holds := flag.Int("holds-per-kind", 20, "least jobs of each kind (publish, load) held PENDING")
	holdMax := flag.Duration("hold-max", time.Minute, "a held job waits a random time below this")
	flag.Parse()
	if err := run(*rows, *dates, *chunk, *loaders, *kills, *restarts, *faultRate, *timeout, *holds, *holdMax); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(rows, dates, chunk, loaders, kills, restarts int, faultRate float64, timeout time.Duration, holds int, holdMax time.Duration) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "pgbq-chaos-")
	if err != nil {
		return err
	}
	os.Chmod(work, 0o755) // PostgreSQL runs as its own user
	loader, planner, err := chaos.BuildBinaries(root, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	rep, err := chaos.Run(context.Background(), chaos.Options{
		Root: root, LoaderBin: loader, PlannerBin: planner,
		BQEndpoint: os.Getenv("BQ_ENDPOINT"), EmulatorEndpoint: os.Getenv("BQ_EMULATOR_ENDPOINT"), HoldsPerKind: holds, HoldMax: holdMax, BQProject: os.Getenv("BQ_EMU_PROJECT"), Dataset: "chaos",
		WorkDir: work, Rows: rows, Dates: dates, ChunkSize: chunk, Loaders: loaders, KillsPerKind: kills,
		PGRestarts: restarts, FaultRate: faultRate, Timeout: timeout, Log: os.Stderr,
	})
	if err != nil {
		return fmt.Errorf("%w (the run's logs are kept in %s)", err, work)
	}
	fmt.Print(rep.Table())
	bad := rep.Lost != 0 || rep.Duplicated != 0 || rep.BigQueryRows != rep.SourceRows || len(rep.Unfinished) > 0 || rep.DeadLettered != 0
	for _, k := range chaos.Kinds {
		if rep.Faults[k] == 0 {
			fmt.Printf("not injected: %s\n", k)
			bad = true
		}
	}
	if len(rep.Unfinished) > 0 {
		fmt.Printf("unfinished dates: %v\n", rep.Unfinished)
	}
	if rep.DeadLettered > 0 {
		fmt.Printf("dead-lettered messages: %d\n", rep.DeadLettered)
	}
	for _, m := range rep.Nemesis.Complete(holds) {
		fmt.Printf("nemesis: %s\n", m)
		bad = true
	}
	n := rep.Nemesis
	fmt.Printf("nemesis detail: held publish=%d load=%d; stale publishes the fence saw end by themselves=%d; rows committed during the run=%d, not in BigQuery=%d\n",
		n.HeldByKind["publish"], n.HeldByKind["load"], n.StaleRan, n.LateRows, n.LateMissing)
	fmt.Println(rep.Nemesis.Line())
	fmt.Println(rep.Line())
	if bad {
		fmt.Printf("the run's logs are kept in %s\n", work)
		os.Exit(1)
	}
	os.RemoveAll(work)
	return nil
}
