package main

import (
	"context"
	"fmt"
	"io"
	"slices"
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

// copyThroughput reads the whole table with binary COPY and discards it,
// best of runs.
func copyThroughput(ctx context.Context, dsn string, runs int) (rowsPerS float64, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sql := `COPY (SELECT id, user_id, action, path, payload, ip, amount, created_at FROM ` + mainTable + `) TO STDOUT (FORMAT binary)`
	for i := 1; i <= runs; i++ {
		var w countingWriter
		t0 := time.Now()
		tag, err := conn.PgConn().CopyTo(ctx, &w, sql)
		if err != nil {
			return 0, fmt.Errorf("copy: %w", err)
		}
		d := time.Since(t0)
		r := float64(tag.RowsAffected()) / d.Seconds()
		logf("copy: run %d: %d rows, %.0f MB binary COPY in %.2f s = %.0f rows/s", i, tag.RowsAffected(), float64(w.n)/1e6, d.Seconds(), r)
		rowsPerS = max(rowsPerS, r)
	}
	return rowsPerS, nil
}

// extractEncode runs the loader's own read and encode stages
// (loader.Extract) over every day, discarding the Parquet instead of
// loading it.
func extractEncode(ctx context.Context, src *pgsource.Source, l layout, chunk int) (rowsPerS float64, dayRows []int64, err error) {
	enc, err := parquetenc.New(src.Table())
	if err != nil {
		return 0, nil, err
	}
	var total, chunks, outBytes int64
	var readD, encD time.Duration
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
			return 0, nil, err
		}
		if !done {
			return 0, nil, fmt.Errorf("extract of day %d did not finish", d)
		}
		dayRows = append(dayRows, n)
		total += n
	}
	d := time.Since(t0)
	if total != l.rows {
		return 0, nil, fmt.Errorf("extract read %d rows, want %d", total, l.rows)
	}
	rowsPerS = float64(total) / d.Seconds()
	logf("extract+encode: %d rows, %d non-empty chunks (chunk %d), %d days in %.2f s = %.0f rows/s (loader.Extract: reading and encoding overlap)", total, chunks, chunk, l.days, d.Seconds(), rowsPerS)
	logf("extract+encode: time in ReadChunk %.2f s (%.0f rows/s), in Encode %.2f s (%.0f rows/s), Parquet out %.0f MB",
		readD.Seconds(), float64(total)/readD.Seconds(), encD.Seconds(), float64(total)/encD.Seconds(), float64(outBytes)/1e6)
	return rowsPerS, dayRows, nil
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
// the big day, every chunk of it, and the final empty probe of day 0.
func chunkTimings(ctx context.Context, src *pgsource.Source, l layout, chunk int) error {
	const reps = 3
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
			return err
		}
		times = append(times, ms(time.Since(t0)))
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
		return fmt.Errorf("%s: no full chunk on %s", name, big.Format(time.DateOnly))
	}
	f1, fm, fr, err := timeCall(ctx, src, big, keys[0], chunk, reps, &b)
	if err != nil {
		return err
	}
	l1, lm, lr, err := timeCall(ctx, src, big, keys[nfull-1], chunk, reps, &b)
	if err != nil {
		return err
	}
	p1, pm, pr, err := timeCall(ctx, src, big, keys[len(keys)-1], chunk, reps, &b)
	if err != nil {
		return err
	}
	closing := "final empty probe"
	if pr > 0 {
		closing = "closing short chunk"
	}
	logf("chunks: %s %s: first %s-row chunk %s (median of %d: %s, %d rows); last full chunk (#%d) %s (median %s, %d rows); %s %s (median %s, %d rows)",
		name, big.Format(time.DateOnly), fmtCount(chunk), ms(f1), reps, ms(fm), fr, nfull, ms(l1), ms(lm), lr, closing, ms(p1), ms(pm), pr)

	// Day 0: read it to its end, then time the empty probe after its last row.
	d0 := l.day(0)
	after = nil
	var n int
	for {
		if err := src.ReadChunk(ctx, d0, d0.AddDate(0, 0, 1), after, chunk, &b); err != nil {
			return err
		}
		n += b.Rows
		if b.Rows == 0 {
			break
		}
		last := b.Last
		after = &last
	}
	if after == nil {
		return fmt.Errorf("%s: no rows on %s", name, d0.Format(time.DateOnly))
	}
	const probeReps = 5
	p1, pm, pr, err = timeCall(ctx, src, d0, after, chunk, probeReps, &b)
	if err != nil {
		return err
	}
	if pr != 0 {
		return fmt.Errorf("%s: final probe of %s returned %d rows", name, d0.Format(time.DateOnly), pr)
	}
	logf("chunks: %s %s (first day, %d rows, last id %d): final empty probe %s (median of %d: %s)",
		name, d0.Format(time.DateOnly), n, after.ID, ms(p1), probeReps, ms(pm))
	return nil
}

func fmtCount(n int) string {
	switch {
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dK", n/1000)
	default:
		return fmt.Sprint(n)
	}
}
