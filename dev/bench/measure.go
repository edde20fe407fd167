package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/loader"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/schema"
)

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)

// copyThroughput reads the whole table once with binary COPY and discards it.
func copyThroughput(ctx context.Context, dsn string, round int) (rowsPerS float64, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sql := `COPY (SELECT id, user_id, action, path, payload, ip, amount, created_at FROM ` + mainTable + `) TO STDOUT (FORMAT binary)`
	var w countingWriter
	t0 := time.Now()
	tag, err := conn.PgConn().CopyTo(ctx, &w, sql)
	if err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	d := time.Since(t0)
	rowsPerS = float64(tag.RowsAffected()) / d.Seconds()
	logf("copy: round %d: %d rows, %.0f MB binary COPY in %.2f s = %.0f rows/s", round, tag.RowsAffected(), float64(w.n)/1e6, d.Seconds(), rowsPerS)
	return rowsPerS, nil
}

type extractResult struct {
	rowsPerS    float64
	dayRows     []int64
	bytesPerRow float64
	cpuPerMRows float64 // CPU seconds of this process per million rows
}

// cpuTime is this process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startProfiles starts a CPU profile in dir and returns the function that
// stops it and writes the allocation profile next to it.
func startProfiles(dir string) (stop func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	runtime.MemProfileRate = 64 << 10
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return err
		}
		m, err := os.Create(filepath.Join(dir, "allocs.pprof"))
		if err != nil {
			return err
		}
		defer m.Close()
		return pprof.Lookup("allocs").WriteTo(m, 0)
	}, nil
}

// extractEncode runs the loader's own read and encode stages
// (loader.Extract) over every day, discarding the Parquet instead of
// loading it.
func extractEncode(ctx context.Context, src *pgsource.Source, l layout, chunk, round int, profile string) (res extractResult, err error) {
	enc, err := parquetenc.New(src.Table())
	if err != nil {
		return res, err
	}
	if profile != "" {
		stop, err := startProfiles(profile)
		if err != nil {
			return res, err
		}
		defer func() {
			if perr := stop(); perr != nil && err == nil {
				err = perr
			}
		}()
	}
	var total, chunks, outBytes int64
	var readD, encD time.Duration
	var dayRows []int64
	runtime.GC()
	cpu0 := cpuTime()
	t0 := time.Now()
	for d := int64(0); d < l.days; d++ {
		var n int64
		done, err := loader.Extract(ctx, src, enc, l.day(d), l.day(d).AddDate(0, 0, 1), nil, chunk, time.Now().Add(time.Hour), loader.Stages{Commit: func(_ context.Context, c loader.Chunk) error {
			n += int64(c.Rows)
			chunks++
			outBytes += int64(c.Data.Len())
			readD += c.Read
			encD += c.Encode
			return nil
		}, Load: func(context.Context, loader.Chunk) error { return nil }})
		if err != nil {
			return res, err
		}
		if !done {
			return res, fmt.Errorf("extract of day %d did not finish", d)
		}
		dayRows = append(dayRows, n)
		total += n
	}
	d := time.Since(t0)
	cpu := cpuTime() - cpu0
	if total != l.rows {
		return res, fmt.Errorf("extract read %d rows, want %d", total, l.rows)
	}
	res = extractResult{
		rowsPerS:    float64(total) / d.Seconds(),
		dayRows:     dayRows,
		bytesPerRow: float64(outBytes) / float64(total),
		cpuPerMRows: cpu.Seconds() / (float64(total) / 1e6),
	}
	logf("extract+encode: round %d: %d rows, %d non-empty chunks (chunk %d), %d days in %.2f s = %.0f rows/s (loader.Extract: reading and encoding overlap)",
		round, total, chunks, chunk, l.days, d.Seconds(), res.rowsPerS)
	logf("extract+encode: round %d: time in ReadChunk %.2f s (%.0f rows/s), in Encode %.2f s (%.0f rows/s), out %.1f MB = %.2f bytes/row, CPU %.2f s = %.2f s per million rows",
		round, readD.Seconds(), float64(total)/readD.Seconds(), encD.Seconds(), float64(total)/encD.Seconds(),
		float64(outBytes)/1e6, res.bytesPerRow, cpu.Seconds(), res.cpuPerMRows)
	return res, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// timeCall times one ReadChunk call reps times; it returns the first
// time, the median and the rows read.
func timeCall(ctx context.Context, src *pgsource.Source, day time.Time, after *schema.Key, chunk, reps int, b *schema.Batch) (first, med time.Duration, rows int, err error) {
	var ds []time.Duration
	for range reps {
		t0 := time.Now()
		if err := src.ReadChunk(ctx, day, day.AddDate(0, 0, 1), after, chunk, b); err != nil {
			return 0, 0, 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	return ds[0], median(ds), b.Rows, nil
}

// chunkTimings reports, for table: the first and the last full chunk of
// the big day, every chunk of it, and the final empty probe of day 0. It
// returns the flatness: the last full chunk's time over the first's.
func chunkTimings(ctx context.Context, src *pgsource.Source, l layout, chunk int) (flatness float64, err error) {
	const reps = 5
	name := src.Name()
	var b schema.Batch
	big := l.day(l.bigDay)
	var times []string
	var after *schema.Key
	var keys []*schema.Key // keys[i]: the position chunk i starts after
	for {
		keys = append(keys, after)
		t0 := time.Now()
		if err := src.ReadChunk(ctx, big, big.AddDate(0, 0, 1), after, chunk, &b); err != nil {
			return 0, err
		}
		times = append(times, ms(time.Since(t0)))
		if b.Truncated {
			return 0, fmt.Errorf("%s: a %d-row chunk ended early on its byte cap after %d rows", name, chunk, b.Rows)
		}
		if b.Rows < chunk {
			if b.Rows != 0 {
				times[len(times)-1] += fmt.Sprintf(" (%d rows)", b.Rows)
			}
			break
		}
		last := b.Last
		after = &last
	}
	nfull := len(keys) - 1 // the last call was short or empty
	logf("chunks: %s %s (%d rows): every ReadChunk in order: %v", name, big.Format(time.DateOnly), l.bigRows, times)
	if nfull < 1 {
		return 0, fmt.Errorf("%s: no full chunk on %s", name, big.Format(time.DateOnly))
	}
	// The first and the last full chunk take turns, so that other load on
	// the machine hits both alike; the best of each is the flatness figure.
	var fd, ld []time.Duration
	var fr, lr int
	for range reps {
		for _, k := range []struct {
			after *schema.Key
			ds    *[]time.Duration
			rows  *int
		}{{keys[0], &fd, &fr}, {keys[nfull-1], &ld, &lr}} {
			t0 := time.Now()
			if err := src.ReadChunk(ctx, big, big.AddDate(0, 0, 1), k.after, chunk, &b); err != nil {
				return 0, err
			}
			*k.ds = append(*k.ds, time.Since(t0))
			*k.rows = b.Rows
		}
	}
	f1, fm, fmin := fd[0], median(fd), slices.Min(fd)
	l1, lm, lmin := ld[0], median(ld), slices.Min(ld)
	flatness = lmin.Seconds() / fmin.Seconds()
	p1, pm, pr, err := timeCall(ctx, src, big, keys[len(keys)-1], chunk, reps, &b)
	if err != nil {
		return 0, err
	}
	closing := "final empty probe"
	if pr > 0 {
		closing = "closing short chunk"
	}
	logf("chunks: %s %s: first %s-row chunk %s (median of %d: %s, best %s, %d rows); last full chunk (#%d) %s (median %s, best %s, %d rows); %s %s (median %s, %d rows)",
		name, big.Format(time.DateOnly), fmtCount(chunk), ms(f1), reps, ms(fm), ms(fmin), fr, nfull, ms(l1), ms(lm), ms(lmin), lr, closing, ms(p1), ms(pm), pr)
	logf("chunks: %s: flatness (last ÷ first full chunk, best of %d, taking turns) %.2f", name, reps, flatness)

	// Day 0: read it to its end, then time the empty probe after its last row.
	d0 := l.day(0)
	after = nil
	var n int
	for {
		if err := src.ReadChunk(ctx, d0, d0.AddDate(0, 0, 1), after, chunk, &b); err != nil {
			return 0, err
		}
		n += b.Rows
		if b.Rows == 0 {
			break
		}
		last := b.Last
		after = &last
	}
	if after == nil {
		return 0, fmt.Errorf("%s: no rows on %s", name, d0.Format(time.DateOnly))
	}
	const probeReps = 5
	p1, pm, pr, err = timeCall(ctx, src, d0, after, chunk, probeReps, &b)
	if err != nil {
		return 0, err
	}
	if pr != 0 {
		return 0, fmt.Errorf("%s: final probe of %s returned %d rows", name, d0.Format(time.DateOnly), pr)
	}
	logf("chunks: %s %s (first day, %d rows, last id %d): final empty probe %s (median of %d: %s)",
		name, d0.Format(time.DateOnly), n, after.ID, ms(p1), probeReps, ms(pm))
	return flatness, nil
}

func fmtCount(n int) string {
	switch {
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dK", n/1000)
	default:
		return fmt.Sprint(n)
	}
}
