// Command bench measures pgbq on a throwaway stack (run by dev/bench.sh,
// `make bench`): it seeds a 5M-row activity_logs over 30 days (one day of
// 2M rows) and a shuffled-id copy, then measures raw binary COPY
// throughput, extract+encode throughput (pgsource.ReadChunk and
// parquetenc.Encode, as the loader does), per-chunk read times that must
// not grow with the chunk's position, and the real loader binary end to
// end against the BigQuery emulator with its peak RSS. The last line is
// machine-readable:
//
//	bench: copy_rows_per_s=C extract_encode_rows_per_s=E end_to_end_rows_per_s=T ratio=R peak_rss_mb=M wide_rows_peak_rss_mb=W bytes_per_row=B extract_cpu_s_per_mrows=U chunk_flatness_rising=FR chunk_flatness_shuffled=FS latency_hiding=H publish_bytes_per_day=P
//
// W is the loader's peak RSS syncing a day of 28 rows of 5 MB text. B is the bytes handed to BigQuery per row; U is the CPU seconds (user +
// system) pgbq's own process spends extracting and encoding a million rows.
// FR and FS (chunk_flatness_rising, chunk_flatness_shuffled) are the last
// full chunk's read time over the first's on the big day, best of 5 each,
// for ids rising with time and shuffled ids. H (latency_hiding) is the big
// day's end-to-end rows/s through the fidelity layer with 3 s job latency
// over the same without (see latency.go); M includes those runs. P
// (publish_bytes_per_day) is what the big day's publish from staging (a
// MERGE) processed, by the fidelity layer's count of on-demand bytes (see
// publish.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/pgsource"
)

func logf(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func main() {
	rows := flag.Int64("rows", 5_000_000, "rows in activity_logs")
	bigRows := flag.Int64("big-day-rows", 2_000_000, "rows on the one big day")
	days := flag.Int64("days", 30, "days the rows span")
	chunk := flag.Int("chunk", 250_000, "chunk size for extract+encode and the chunk timings")
	loader := flag.String("loader", "", "path of the loader binary")
	workDir := flag.String("work", os.TempDir(), "directory for loader logs")
	budget := flag.Duration("e2e-budget", 8*time.Minute, "time the end-to-end run may take; later dates are skipped")
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of COPY then extract+encode, interleaved; the best of each counts")
	flag.StringVar(&o.profile, "profile", "", "directory for CPU and allocation profiles of the last extract+encode round")
	flag.BoolVar(&o.skipE2E, "skip-e2e", false, "stop after the chunk timings (quick runs while iterating; the last line then has no end-to-end figures)")
	flag.BoolVar(&o.reuse, "reuse", false, "keep an already seeded pgbq_bench database (iterating against one cluster)")
	flag.DurationVar(&o.jobLatency, "job-latency", 3*time.Second, "job latency of the latency-hiding run (the big day is synced with it and without)")
	flag.IntVar(&o.latencyRounds, "latency-rounds", 1, "rounds of the big day without and with job latency, alternating; the best of each counts (each round adds about a minute)")
	flag.BoolVar(&o.onlyLatency, "only-latency", false, "after seeding, run only the latency-hiding syncs (iterating)")
	flag.BoolVar(&o.onlyWide, "only-wide", false, "run only the wide-rows sync and its peak RSS, seeding nothing else (iterating)")
	flag.BoolVar(&o.onlyChangeCost, "only-change-cost", false, "run only the cost of changes: a year of 400 rows a day, 100 changes on recent days and scattered over the year, each replaced by day and upserted (docs/changes.md)")
	flag.BoolVar(&o.onlyPublishBytes, "only-publish-bytes", false, "after seeding, sync only the big day through the fidelity layer and print the bytes its publish processed (iterating)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *rows, *bigRows, *days, *chunk, *loader, *workDir, *budget, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		os.Exit(1)
	}
}

// publishFigure measures publishCost and logs it against the docs' bound.
func publishFigure(ctx context.Context, c e2eConfig, emulator string, l layout) (int64, error) {
	pb, sb, rb, err := publishCost(ctx, c, emulator, l)
	if err != nil {
		return 0, err
	}
	verdict := "within"
	if pb > sb+rb {
		verdict = "MORE than"
	}
	logf("publish: the big day's publish from staging processed %d bytes, %s staging (%d) plus the replaced day (%d)", pb, verdict, sb, rb)
	return pb, nil
}

func env(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("%s is not set (run through dev/bench.sh)", name)
	}
	return v, nil
}

// options are the knobs for iterating on one machine.
type options struct {
	rounds           int
	profile          string
	skipE2E          bool
	reuse            bool
	jobLatency       time.Duration
	latencyRounds    int
	onlyLatency      bool
	onlyWide         bool
	onlyPublishBytes bool
	onlyChangeCost   bool
}

func run(ctx context.Context, rows, bigRows, days int64, chunk int, loader, workDir string, budget time.Duration, o options) error {
	start := time.Now()
	l, err := newLayout(rows, bigRows, days)
	if err != nil {
		return err
	}
	if loader == "" && !o.skipE2E {
		return fmt.Errorf("--loader is required")
	}
	if o.rounds < 1 {
		return fmt.Errorf("--rounds must be at least 1")
	}
	admin, err := env("PG_ADMIN_DSN")
	if err != nil {
		return err
	}
	var endpoint, emulator, project string
	if !o.skipE2E {
		if endpoint, err = env("BQ_ENDPOINT"); err != nil {
			return err
		}
		if emulator, err = env("BQ_EMULATOR_ENDPOINT"); err != nil {
			return err
		}
		if project, err = env("BQ_EMU_PROJECT"); err != nil {
			return err
		}
	}
	if !strings.Contains(admin, "dbname=postgres") {
		return fmt.Errorf("PG_ADMIN_DSN has no dbname=postgres to replace")
	}
	dsn := strings.Replace(admin, "dbname=postgres", "dbname=pgbq_bench", 1)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return err
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = 'pgbq_bench')").Scan(&exists); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return err
	}
	if !exists || !o.reuse {
		_, err = conn.Exec(ctx, "CREATE DATABASE pgbq_bench")
	}
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &load[0], &load[1], &load[2])
	}
	logf("bench: PostgreSQL %s, %d CPUs (%s, load average %.2f %.2f %.2f at start), %d rows over %d days, chunk %d",
		version, runtime.NumCPU(), host, load[0], load[1], load[2], rows, days, chunk)

	if o.onlyWide {
		c := e2eConfig{loader: loader, workDir: workDir, pgDSN: dsn, bqEndpoint: endpoint, bqProject: project, dataset: benchDataset, budget: budget, chunk: chunk}
		kb, err := wideRows(ctx, c)
		if err != nil {
			return err
		}
		fmt.Printf("bench: wide_rows_peak_rss_mb=%d (--only-wide)\n", int64(math.Round(float64(kb)/1024)))
		return nil
	}
	if o.onlyChangeCost {
		return changeCosts(ctx, dsn, emulator, project, chunk)
	}
	if exists && o.reuse {
		logf("seed: reusing the seeded pgbq_bench database (--reuse)")
	} else if err := seed(ctx, dsn, l); err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	if o.onlyLatency {
		c := e2eConfig{loader: loader, workDir: workDir, pgDSN: dsn, bqProject: project, chunk: chunk}
		h, _, err := latencyHiding(ctx, c, emulator, l, o.jobLatency, o.latencyRounds)
		if err != nil {
			return err
		}
		fmt.Printf("bench: latency_hiding=%.2f (--only-latency)\n", h)
		return nil
	}
	if o.onlyPublishBytes {
		c := e2eConfig{loader: loader, workDir: workDir, pgDSN: dsn, bqProject: project, chunk: chunk}
		pb, err := publishFigure(ctx, c, emulator, l)
		if err != nil {
			return err
		}
		fmt.Printf("bench: publish_bytes_per_day=%d (--only-publish-bytes)\n", pb)
		return nil
	}

	spec := func(t string) pgsource.TableSpec {
		return pgsource.TableSpec{Table: t, IDColumn: "id", TimestampColumn: "created_at"}
	}
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: dsn}, spec(mainTable))
	if err != nil {
		return err
	}
	defer src.Close()
	// COPY and extract+encode take turns, so that other load on the
	// machine hits both alike; the best round of each counts.
	var copyRate float64
	var ee extractResult
	for r := 1; r <= o.rounds; r++ {
		c, err := copyThroughput(ctx, dsn, r)
		if err != nil {
			return err
		}
		prof := ""
		if r == o.rounds {
			prof = o.profile
		}
		e, err := extractEncode(ctx, src, l, chunk, r, prof)
		if err != nil {
			return err
		}
		copyRate = max(copyRate, c)
		if e.rowsPerS > ee.rowsPerS {
			ee = e
		}
	}
	eeRate, dayRows := ee.rowsPerS, ee.dayRows
	ratio := eeRate / copyRate
	logf("extract+encode / copy = %.2f (best of %d interleaved rounds each); %.2f bytes a row handed to BigQuery; %.2f CPU s per million rows in pgbq's process",
		ratio, o.rounds, ee.bytesPerRow, ee.cpuPerMRows)

	flatRising, err := chunkTimings(ctx, src, l, chunk)
	if err != nil {
		return err
	}
	shuf, err := pgsource.Open(ctx, pgsource.Config{DSN: dsn}, spec(shuffledTable))
	if err != nil {
		return err
	}
	defer shuf.Close()
	flatShuffled, err := chunkTimings(ctx, shuf, l, chunk)
	if err != nil {
		return err
	}
	flat := fmt.Sprintf("chunk_flatness_rising=%.2f chunk_flatness_shuffled=%.2f", flatRising, flatShuffled)

	if o.skipE2E {
		logf("bench: total wall time %.1f s", time.Since(start).Seconds())
		fmt.Printf("bench: copy_rows_per_s=%d extract_encode_rows_per_s=%d ratio=%.2f bytes_per_row=%.2f extract_cpu_s_per_mrows=%.2f %s (--skip-e2e)\n",
			int64(math.Round(copyRate)), int64(math.Round(eeRate)), ratio, ee.bytesPerRow, ee.cpuPerMRows, flat)
		return nil
	}
	c := e2eConfig{loader: loader, workDir: workDir, pgDSN: dsn, bqEndpoint: endpoint, bqProject: project, dataset: benchDataset, budget: budget, chunk: chunk}
	res, err := endToEnd(ctx, c, l, dayRows)
	if err != nil {
		return fmt.Errorf("end-to-end: %w", err)
	}
	got, ids, err := destinationCount(ctx, c)
	if err != nil {
		return fmt.Errorf("end-to-end: %w", err)
	}
	if got != res.rows || ids != res.rows {
		return fmt.Errorf("end-to-end: destination %s.%s holds %d rows (%d distinct ids), want %d",
			benchDataset, mainTable, got, ids, res.rows)
	}
	e2eRate := float64(res.rows) / res.wall.Seconds()
	if int64(res.dates) == l.days {
		logf("end-to-end: all %d dates, %d rows in %.1f s = %.0f rows/s; destination holds %d rows, %d distinct ids (verified)",
			res.dates, res.rows, res.wall.Seconds(), e2eRate, got, ids)
	} else {
		logf("end-to-end: PARTIAL: %d of %d dates (%d of %d rows) fit the %s budget; rate over those: %d rows in %.1f s = %.0f rows/s; destination holds %d rows, %d distinct ids (verified against the synced dates)",
			res.dates, l.days, res.rows, l.rows, budget, res.rows, res.wall.Seconds(), e2eRate, got, ids)
	}
	logf("end-to-end: the BigQuery emulator copies the whole target table on every load and DML statement, so this rate is bounded by the emulator, not by pgbq")
	peakMB := int64(math.Round(float64(res.peakRSSKB) / 1024))
	logf("end-to-end: loader peak RSS %d MB (max over %d processes, from rusage)", peakMB, res.dates)
	wideKB, err := wideRows(ctx, c)
	if err != nil {
		return err
	}
	wideMB := int64(math.Round(float64(wideKB) / 1024))
	hiding, best, err := latencyHiding(ctx, c, emulator, l, o.jobLatency, o.latencyRounds)
	if err != nil {
		return err
	}
	for _, r := range best {
		peakMB = max(peakMB, int64(math.Round(float64(r.run.rusage.Maxrss)/1024)))
	}
	pb, err := publishFigure(ctx, c, emulator, l)
	if err != nil {
		return err
	}
	logf("bench: total wall time %.1f s", time.Since(start).Seconds())
	fmt.Printf("bench: copy_rows_per_s=%d extract_encode_rows_per_s=%d end_to_end_rows_per_s=%d ratio=%.2f peak_rss_mb=%d wide_rows_peak_rss_mb=%d bytes_per_row=%.2f extract_cpu_s_per_mrows=%.2f %s latency_hiding=%.2f publish_bytes_per_day=%d\n",
		int64(math.Round(copyRate)), int64(math.Round(eeRate)), int64(math.Round(e2eRate)), ratio, peakMB, wideMB, ee.bytesPerRow, ee.cpuPerMRows, flat, hiding, pb)
	return nil
}
