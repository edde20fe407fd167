// Command chaos is `make chaos`: a full-size fault-injection run of the
// real planner and loader binaries against PostgreSQL, the BigQuery
// emulator and pstest (see internal/chaos). It prints the faults injected
// and ends with one line:
//
//	chaos: faults=F dates=D source_rows=S bigquery_rows=B lost=L duplicated=X
//
// It exits non-zero when a row was lost or duplicated, a date is left
// unfinished, a message was dead-lettered or a fault kind never happened.
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
	flag.Parse()
	if err := run(*rows, *dates, *chunk, *loaders, *kills, *restarts, *faultRate, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(rows, dates, chunk, loaders, kills, restarts int, faultRate float64, timeout time.Duration) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "pgbq-chaos-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755) // PostgreSQL runs as its own user
	loader, planner, err := chaos.BuildBinaries(root, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	rep, err := chaos.Run(context.Background(), chaos.Options{
		Root: root, LoaderBin: loader, PlannerBin: planner,
		BQEndpoint: os.Getenv("BQ_ENDPOINT"), BQProject: os.Getenv("BQ_EMU_PROJECT"), Dataset: "chaos",
		WorkDir: work, Rows: rows, Dates: dates, ChunkSize: chunk, Loaders: loaders, KillsPerKind: kills,
		PGRestarts: restarts, FaultRate: faultRate, Timeout: timeout, Log: os.Stderr,
	})
	if err != nil {
		return err
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
	fmt.Println(rep.Line())
	if bad {
		os.Exit(1)
	}
	return nil
}
