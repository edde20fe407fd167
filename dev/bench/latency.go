package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
)

// latencyRun is one sync of the big day through a fidelity proxy.
type latencyRun struct {
	latency  time.Duration
	rowsPerS float64
	run      loaderRun
	phases   phases
	stats    bqfidelity.Stats
}

// latencyHiding syncs the big day with the loader binary through two
// fidelity proxies in front of the same emulator, one whose jobs each take
// lat (PENDING, then RUNNING) and one whose jobs take no time of their
// own, each run into a fresh dataset; rounds alternate the two and the
// best of each counts. The result is end-to-end rows/s with lat ÷ without:
// how well the loader hides a load job's latency (issue 10 asks ≥ 0.8 at
// 3 s on a 2M-row day).
func latencyHiding(ctx context.Context, c e2eConfig, emulator string, l layout, lat time.Duration, rounds int) (ratio float64, best [2]latencyRun, err error) {
	date := l.day(l.bigDay).Format(time.DateOnly)
	for r := 1; r <= rounds; r++ {
		for i, d := range []time.Duration{0, lat} {
			run, err := syncThrough(ctx, c, emulator, l, date, d, r)
			if err != nil {
				return 0, best, err
			}
			ph := run.phases
			logf("latency: round %d, job latency %s: %d rows in %.2f s = %.0f rows/s; setup %.1f s, staging %.1f s (%d chunks, load %.1f s mean), publish and verify %.1f s (by load: %v); rate-limited %v",
				r, d, l.bigRows, run.run.wall.Seconds(), run.rowsPerS, ph.setup.Seconds(), ph.staging.Seconds(), ph.chunks,
				ph.meanLoad.Seconds(), ph.publish.Seconds(), ph.byLoad, run.stats.RateLimited)
			if run.rowsPerS > best[i].rowsPerS {
				best[i] = run
			}
		}
	}
	ratio = best[1].rowsPerS / best[0].rowsPerS
	logf("latency: latency_hiding = %.2f: %.0f rows/s with %s job latency ÷ %.0f rows/s with none (best of %d each, %s, %d rows)",
		ratio, best[1].rowsPerS, lat, best[0].rowsPerS, rounds, date, l.bigRows)
	return ratio, best, nil
}

// syncThrough runs `loader --date date` through a fresh fidelity proxy
// with job latency lat into a fresh dataset, checks the destination, and
// drops the dataset again (the emulator holds it in memory).
func syncThrough(ctx context.Context, c e2eConfig, emulator string, l layout, date string, lat time.Duration, round int) (latencyRun, error) {
	opt := bqfidelity.Options{JobLatency: lat,
		Logf: func(format string, args ...any) { logf("latency: fidelity layer: "+format, args...) }}
	p, err := bqfidelity.Start(emulator, opt) //nolint:contextcheck // the proxy lives until Close
	if err != nil {
		return latencyRun{}, err
	}
	defer p.Close() //nolint:contextcheck // Close ends the proxy's own work
	raw := c
	raw.bqEndpoint = emulator
	raw.dataset = fmt.Sprintf("%s_lat%dms_r%d", benchDataset, lat.Milliseconds(), round)
	// Set-up jobs go to the emulator directly: only the loader is timed.
	if err := migrate(ctx, raw); err != nil {
		return latencyRun{}, err
	}
	defer dropDataset(context.WithoutCancel(ctx), raw)
	proxied := raw
	proxied.bqEndpoint = p.Endpoint()
	run, err := runLoader(ctx, proxied, mainTable, date)
	if err != nil {
		return latencyRun{}, err
	}
	got, ids, err := destinationCount(ctx, raw)
	if err != nil {
		return latencyRun{}, err
	}
	if got != l.bigRows || ids != l.bigRows {
		return latencyRun{}, fmt.Errorf("latency: destination %s.%s holds %d rows (%d distinct ids), want %d",
			raw.dataset, mainTable, got, ids, l.bigRows)
	}
	ph, err := scanPhases(run.logPath, run.started)
	if err != nil {
		return latencyRun{}, err
	}
	return latencyRun{latency: lat, rowsPerS: float64(l.bigRows) / run.wall.Seconds(), run: run, phases: ph, stats: p.Stats()}, nil
}

func dropDataset(ctx context.Context, c e2eConfig) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	client, err := bq.NewClient(ctx, bq.Config{Project: c.bqProject, Endpoint: c.bqEndpoint})
	if err != nil {
		logf("latency: drop dataset %s: %v", c.dataset, err)
		return
	}
	defer client.Close()
	if err := client.Dataset(c.dataset).DeleteWithContents(ctx); err != nil {
		logf("latency: drop dataset %s: %v", c.dataset, err)
	}
}

// phases splits one loader run by its log: setup is the process's start
// to the first chunk's load start (first "chunk staged" minus its load),
// so it includes reading and encoding that chunk; staging runs from there
// to the last "chunk staged", publish from there to "date processed". A
// day published by load (byLoad) may end before any chunk is staged: it
// is all setup then.
type phases struct {
	setup, staging, publish time.Duration
	chunks                  int
	meanLoad                time.Duration
	byLoad                  bool
}

func scanPhases(path string, start time.Time) (phases, error) {
	f, err := os.Open(path)
	if err != nil {
		return phases{}, err
	}
	defer f.Close()
	var firstLoad, lastStaged, processed time.Time
	var loads time.Duration
	var ph phases
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Time    time.Time `json:"time"`
			Message string    `json:"message"`
			LoadMS  int64     `json:"load_ms"`
		}
		if !strings.HasPrefix(sc.Text(), "{") || json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch e.Message {
		case "chunk staged":
			load := time.Duration(e.LoadMS) * time.Millisecond
			if ph.chunks == 0 {
				firstLoad = e.Time.Add(-load)
			}
			ph.chunks++
			loads += load
			lastStaged = e.Time
		case "date processed":
			processed = e.Time
		case "date published by load":
			ph.byLoad = true
		}
	}
	if err := sc.Err(); err != nil {
		return phases{}, err
	}
	if processed.IsZero() {
		return phases{}, fmt.Errorf("%s: no \"date processed\" line", path)
	}
	if ph.chunks == 0 {
		ph.setup = processed.Sub(start)
		return ph, nil
	}
	ph.setup = firstLoad.Sub(start)
	ph.staging = lastStaged.Sub(firstLoad)
	ph.publish = processed.Sub(lastStaged)
	ph.meanLoad = loads / time.Duration(ph.chunks)
	return ph, nil
}
