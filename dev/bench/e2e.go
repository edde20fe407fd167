package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/syncstate"
)

const benchDataset = "pgbq_bench"

type e2eConfig struct {
	loader, workDir, pgDSN, bqEndpoint, bqProject string
	// dataset holds the destination, staging and sync_control.
	dataset string
	budget  time.Duration
	chunk   int
}

type e2eResult struct {
	dates     int
	rows      int64
	wall      time.Duration
	peakRSSKB int64
}

// migrate does what `planner migrate` does once per deploy: the bench's
// dataset and sync_control (the loader creates its destination itself).
func migrate(ctx context.Context, c e2eConfig) error {
	cfg := bq.Config{Project: c.bqProject, Dataset: c.dataset, Location: "US", Endpoint: c.bqEndpoint}
	client, err := bq.NewClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := bq.EnsureDatasets(ctx, client, cfg); err != nil {
		return err
	}
	return syncstate.New(client, c.bqProject, c.dataset).Migrate(ctx)
}

// endToEnd runs `loader --date D` for each date in order, one process at a
// time, while the next date is expected to fit in the budget.
func endToEnd(ctx context.Context, c e2eConfig, l layout, dayRows []int64) (e2eResult, error) {
	if err := migrate(ctx, c); err != nil {
		return e2eResult{}, err
	}
	var res e2eResult
	t0 := time.Now()
	for i := int64(0); i < l.days; i++ {
		elapsed := time.Since(t0)
		if res.rows > 0 {
			rate := float64(res.rows) / elapsed.Seconds()
			next := time.Duration(float64(dayRows[i]) / rate * float64(time.Second))
			if elapsed+next > c.budget {
				logf("end-to-end: stopping before %s: %s elapsed, about %s more expected, budget %s",
					l.day(i).Format(time.DateOnly), elapsed.Round(time.Second), next.Round(time.Second), c.budget)
				break
			}
		}
		date := l.day(i).Format(time.DateOnly)
		r, err := runLoader(ctx, c, mainTable, date)
		if err != nil {
			return res, err
		}
		d, ru, logPath := r.wall, r.rusage, r.logPath
		res.peakRSSKB = max(res.peakRSSKB, ru.Maxrss)
		res.dates++
		res.rows += dayRows[i]
		chunks, outcome := scanLog(logPath)
		logf("end-to-end: %s: %7d rows in %6.2f s = %7.0f rows/s, %d chunks, %s, loader max RSS %d MB",
			date, dayRows[i], d.Seconds(), float64(dayRows[i])/d.Seconds(), chunks, outcome, ru.Maxrss/1024)
	}
	res.wall = time.Since(t0)
	return res, nil
}

// loaderRun is one `loader --date` process.
type loaderRun struct {
	started time.Time
	wall    time.Duration
	rusage  *syscall.Rusage
	logPath string
}

// runLoader runs `loader --date date` for table against c's endpoint and
// dataset, its log in c.workDir.
func runLoader(ctx context.Context, c e2eConfig, table, date string) (loaderRun, error) {
	env := append(os.Environ(),
		"PG_DSN="+c.pgDSN, "BQ_PROJECT="+c.bqProject, "BQ_DATASET="+c.dataset, "BQ_ENDPOINT="+c.bqEndpoint,
		"SYNC_TABLE="+table, fmt.Sprintf("SYNC_CHUNK_SIZE=%d", c.chunk), "PUBSUB_TOPIC=dates",
		// The loader wants a topic for continuations; --date never publishes.
		// An unreachable emulator address keeps the client off real Pub/Sub.
		"PUBSUB_EMULATOR_HOST=127.0.0.1:1", "LOG_LEVEL=info")
	logPath := filepath.Join(c.workDir, "loader-"+c.dataset+"-"+table+"-"+date+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return loaderRun{}, err
	}
	defer f.Close()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(rctx, c.loader, "--date", date)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	s := time.Now()
	err = cmd.Run()
	d := time.Since(s)
	if err != nil {
		return loaderRun{}, fmt.Errorf("loader --date %s (%s): %w\n%s", date, table, err, tail(logPath, 20))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return loaderRun{}, errors.New("no rusage for the loader process")
	}
	return loaderRun{started: s, wall: d, rusage: ru, logPath: logPath}, nil
}

// scanLog counts staged chunks and finds the last outcome in a loader log.
func scanLog(path string) (chunks int, outcome string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "?"
	}
	defer f.Close()
	outcome = "no outcome logged"
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"chunk staged"`) {
			chunks++
		}
		if i := strings.Index(line, `"outcome":"`); i >= 0 {
			rest := line[i+len(`"outcome":"`):]
			if j := strings.IndexByte(rest, '"'); j >= 0 {
				outcome = rest[:j]
			}
		}
	}
	return chunks, outcome
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// destinationCount counts the rows and distinct ids in the destination.
func destinationCount(ctx context.Context, c e2eConfig) (rows, ids int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	client, err := bq.NewClient(ctx, bq.Config{Project: c.bqProject, Endpoint: c.bqEndpoint})
	if err != nil {
		return 0, 0, err
	}
	defer client.Close()
	r, err := bq.Row[struct {
		N   int64 `bigquery:"n"`
		IDs int64 `bigquery:"ids"`
	}](bq.RunQuery(ctx, client, fmt.Sprintf("SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM %s",
		bq.Ref(c.bqProject, c.dataset, mainTable))))
	if err != nil {
		return 0, 0, fmt.Errorf("count destination rows: %w", err)
	}
	return r.N, r.IDs, nil
}
