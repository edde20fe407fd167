package chaos

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/testenv"
)

// A short chaos run, part of `make test`: every fault kind and nemesis,
// fewer rows, smaller samples of held jobs, shorter holds.
// `make chaos` is the full-size run.
func TestShortChaosRun(t *testing.T) {
	t.Parallel()
	b := testenv.BigQuery(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL runs as its own user: the work dir must be reachable.
	work, err := os.MkdirTemp("", "pgbq-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(work, 0o755)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the run's logs are kept in %s", work) // the loaders' and planners' logs say what went wrong
			return
		}
		os.RemoveAll(work)
	})
	loader, planner, err := BuildBinaries(root, filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{
		Root: root, LoaderBin: loader, PlannerBin: planner,
		BQEndpoint: b.Endpoint, EmulatorEndpoint: os.Getenv(testenv.EnvBQEmulator), HoldsPerKind: 3, HoldMax: 5 * time.Second, BQProject: b.Project, Dataset: b.Dataset, WorkDir: work,
		Rows: 20000, Dates: 10, ChunkSize: 700, Loaders: 2, KillsPerKind: 3, PGRestarts: 1,
		FaultRate: 0.03, Timeout: 6 * time.Minute, Log: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s%s\n%s", rep.Table(), rep.Nemesis.Line(), rep.Line())
	for _, m := range rep.Nemesis.Complete(3) {
		t.Errorf("nemesis: %s", m)
	}
	for _, k := range Kinds {
		if rep.Faults[k] == 0 {
			t.Errorf("fault %q was never injected", k)
		}
	}
	if rep.Lost != 0 || rep.Duplicated != 0 || rep.BigQueryRows != rep.SourceRows {
		t.Errorf("lost %d, duplicated %d, BigQuery %d rows, source %d", rep.Lost, rep.Duplicated, rep.BigQueryRows, rep.SourceRows)
	}
	if len(rep.Unfinished) > 0 {
		t.Errorf("dates not finished: %v", rep.Unfinished)
	}
	if rep.DeadLettered != 0 {
		t.Errorf("%d messages dead-lettered", rep.DeadLettered)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
