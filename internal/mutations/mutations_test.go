package mutations

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/chaos"
	"github.com/pgbq/pgbq/internal/testenv"
)

// A short `make mutations`, part of `make test`: two rounds of every kind
// of change with a loader killed in each, then the sweep runs the docs
// promise; BigQuery must then equal the source in every column.
func TestShortMutationsRun(t *testing.T) {
	t.Parallel()
	b := testenv.BigQuery(t)
	dsn, _ := testenv.PG(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	loader, planner, err := chaos.BuildBinaries(root, filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{
		LoaderBin: loader, PlannerBin: planner, DSN: dsn,
		BQEndpoint: b.Endpoint, BQProject: b.Project, Dataset: b.Dataset, WorkDir: work,
		Rows: 2000, Days: 14, ChunkSize: 100, Rounds: 2, PerRound: 8, Loaders: 2, SweepDays: 8,
		Timeout: 5 * time.Minute, Log: testWriter{t},
	})
	if err != nil {
		keepLogs(t, work)
		t.Fatal(err)
	}
	t.Log(rep.Line())
	if !rep.OK() {
		keepLogs(t, work)
		t.Errorf("want stale, missing, extra and duplicated 0 and every other count above 0 (kills %d)", rep.Kills)
	}
}

// keepLogs copies the processes' logs out of the test's temp dir.
func keepLogs(t *testing.T, work string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgbq-mutations-")
	if err != nil {
		return
	}
	for _, name := range []string{"planner.log", "loader-0.log", "loader-1.log"} {
		if data, err := os.ReadFile(filepath.Join(work, name)); err == nil {
			os.WriteFile(filepath.Join(dir, name), data, 0o644)
		}
	}
	t.Logf("the run's logs are kept in %s", dir)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
