package main

import (
	"context"
	"fmt"
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
	t0 := time.Now()
	r, err := runLoader(ctx, c, wideTable, day.Format(time.DateOnly))
	if err != nil {
		return 0, err
	}
	ru, logPath := r.rusage, r.logPath
	chunks, outcome := scanLog(logPath)
	logf("wide rows: %d rows of %.1f MB text (hex) in %.1f s, %d chunks, %s, loader max RSS %d MB",
		wideCount, float64(md5PerRow*32)/1e6, time.Since(t0).Seconds(), chunks, outcome, ru.Maxrss/1024)
	return ru.Maxrss, nil
}
