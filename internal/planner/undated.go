package planner

import (
	"context"
	"fmt"
	"io"
)

// UndatedCounter is a source that counts its rows that belong to no date:
// timestamp NULL, ±infinity, or outside BigQuery's TIMESTAMP range. pgbq
// never syncs those rows; it counts them wherever it reports a table
// (docs/types.md, "Rows without a date").
type UndatedCounter interface {
	CountUndated(ctx context.Context) (int64, error)
}

// Undated counts the source's rows that belong to no date; 0 when the
// source cannot tell.
func (p *Planner) Undated(ctx context.Context) (int64, error) {
	c, ok := p.Source.(UndatedCounter)
	if !ok {
		return 0, nil
	}
	return c.CountUndated(ctx)
}

// undatedWhy says which rows are undated, for people.
const undatedWhy = "timestamp NULL, infinite, or outside 0001-01-01..9999-12-31 UTC"

// printUndated writes the count of undated rows as a line of a report.
func (p *Planner) printUndated(ctx context.Context, w io.Writer) error {
	n, err := p.Undated(ctx)
	if err != nil {
		return err
	}
	note := ""
	if n > 0 {
		note = " (" + undatedWhy + "; not synced)"
	}
	_, err = fmt.Fprintf(w, "rows without a date: %d%s\n", n, note)
	return err
}
