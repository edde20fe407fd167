package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const wideTable = "wide_rows"

// wideRows syncs one day of wideCount rows of about 5 MB of text each,
// hex that compresses poorly, through the loader binary and returns the
// loader's peak RSS: memory is bounded by bytes, not rows.
func wideRows(ctx context.Context, c e2eConfig) (peakKB int64, err error) {
	const wideCount, md5PerRow = 28, 163840 // 163,840 md5 hex digests: 5.2 MB a row
	conn, err := pgx.Connect(ctx, c.pgDSN)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	day := base
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE %[1]s (id bigint PRIMARY KEY, body text, created_at timestamptz NOT NULL);
ALTER TABLE %[1]s ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE INDEX ON %[1]s (created_at, id);
INSERT INTO %[1]s SELECT g, (SELECT string_agg(md5(g::text || '/' || k::text), '') FROM generate_series(1, %[2]d) k),
  timestamptz '%[3]s' + g * interval '1 minute' FROM generate_series(1, %[4]d) g`,
		wideTable, md5PerRow, day.Format("2006-01-02 15:04:05+00"), wideCount)); err != nil {
		return 0, fmt.Errorf("seed %s: %w", wideTable, err)
	}
	if err := migrate(ctx, c); err != nil {
		return 0, err
	}
	env := append(os.Environ(),
		"PG_DSN="+c.pgDSN, "BQ_PROJECT="+c.bqProject, "BQ_DATASET="+benchDataset, "BQ_ENDPOINT="+c.bqEndpoint,
		"SYNC_TABLE="+wideTable, fmt.Sprintf("SYNC_CHUNK_SIZE=%d", c.chunk), "PUBSUB_TOPIC=dates",
		"PUBSUB_EMULATOR_HOST=127.0.0.1:1", "LOG_LEVEL=info")
	logPath := filepath.Join(c.workDir, "loader-wide.log")
	f, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(rctx, c.loader, "--date", day.Format(time.DateOnly))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("loader --date for %s: %w\n%s", wideTable, err, tail(logPath, 20))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, fmt.Errorf("no rusage for the loader process")
	}
	chunks, outcome := scanLog(logPath)
	logf("wide rows: %d rows of %.1f MB text (hex) in %.1f s, %d chunks, %s, loader max RSS %d MB",
		wideCount, float64(md5PerRow*32)/1e6, time.Since(t0).Seconds(), chunks, outcome, ru.Maxrss/1024)
	return ru.Maxrss, nil
}
