package trial

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/testenv"
)

// EnvDates sets the trial's dates of history (make trial: 400).
const EnvDates = "PGBQ_TRIAL_DATES"

// The README's own-table steps, run literally on a table with 40 dates of
// history (make trial: 400), end by themselves with every date recorded
// finished and each worked once: one delivery to the loader, whose outcome
// was "finished" (no delivery that found the date already finished or
// leased by another loader, none interrupted or failed).
func TestOwnTableTrial(t *testing.T) {
	t.Parallel()
	dates := 40
	if v := os.Getenv(EnvDates); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a number of dates", EnvDates, v)
		}
		dates = n
	}
	dsn, _ := testenv.PG(t)
	b := testenv.BigQuery(t)
	// The README's dataset, shared by every trial on this emulator.
	ctx := context.Background()
	_ = b.Client.Dataset(dataset).DeleteWithContents(ctx)
	t.Cleanup(func() { _ = b.Client.Dataset(dataset).DeleteWithContents(context.Background()) })
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, Options{Root: root, PGDSN: dsn, BQEndpoint: b.Endpoint, BQProject: b.Project,
		Dates: dates, RowsPerDate: 24, WorkDir: t.TempDir(),
		Timeout: 3*time.Minute + time.Duration(dates)*3*time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Line())
	if !rep.Ended {
		t.Fatalf("the own-table steps did not end by themselves (%v); the end of their output:\n%s", rep.ExitErr, tail(rep.Log, 40))
	}
	if rep.Finished != dates {
		t.Errorf("%d of %d dates recorded finished", rep.Finished, dates)
	}
	if p := rep.Problems(10); len(p) > 0 {
		t.Errorf("dates not worked exactly once:\n%s", strings.Join(p, "\n"))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestBlockIsTheOneAfterTheMarker(t *testing.T) {
	readme := "# x\n```sh\nnot this\n```\n" + Marker + "\n```sh\nexport PG_DSN='postgres://USER:PASSWORD@HOST:5432/DBNAME'\n" +
		"export SYNC_FINISH_GRACE=0s  # kept\nplanner migrate\n```\nafter\n```sh\nnor this\n```\n"
	block, err := Block([]byte(readme))
	if err != nil {
		t.Fatal(err)
	}
	got := Substitute(block, map[string]string{"PG_DSN": "host=h dbname=it's"})
	want := "export PG_DSN='host=h dbname=it'\\''s'\nexport SYNC_FINISH_GRACE=0s  # kept\nplanner migrate\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("substituted block (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"no marker\n```sh\nx\n```\n", Marker + "\ntext\n```sh\nx\n```\n", Marker + "\n```sh\nx\n"} {
		if _, err := Block([]byte(bad)); err == nil {
			t.Errorf("Block(%q): no error", bad)
		}
	}
}

// The README in this tree has the marker and a block after it.
func TestReadmeHasTheOwnTableBlock(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := Block(readme)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(block, "loader") {
		t.Errorf("the own-table block runs no loader:\n%s", block)
	}
}
