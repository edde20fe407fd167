package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/pgsource"
)

// Checker runs, without changing anything, the validation Open runs on a
// table before the loader syncs it: the source (table, key columns,
// types, privileges, renames and exclusions: pgsource.Open), the names
// BigQuery accepts (bq.CheckColumnNames, which bq.NewWarehouse runs), and
// the destination's owner and columns (bq.Warehouse.CompareDestination,
// the checks of EnsureDestination) when BigQuery is configured. A table
// passes here exactly when the loader would open it.
type Checker struct {
	c  *config.Common
	bq *bigquery.Client // nil: BQ_PROJECT or BQ_DATASET unset
}

// CheckReport is the verdict on one table.
type CheckReport struct {
	// Problems are what the loader would refuse the table (or dates of
	// it) for, each naming the setting or the change to make.
	Problems []error
	// Warnings do not stop the sync but say what pgbq cannot promise.
	Warnings []string
	// Changes says what the table gets: append-only, or its updates and
	// deletes followed (docs/changes.md).
	Changes string
}

// NewChecker connects to BigQuery when c names a project and dataset.
func NewChecker(ctx context.Context, c *config.Common) (*Checker, error) {
	ch := &Checker{c: c}
	if c.BQ.Project == "" || c.BQ.Dataset == "" {
		return ch, nil
	}
	client, err := bq.NewClient(ctx, c.BQ)
	if err != nil {
		return nil, err
	}
	ch.bq = client
	return ch, nil
}

// Close releases the BigQuery client.
func (ch *Checker) Close() {
	if ch.bq != nil {
		ch.bq.Close()
	}
}

// Check checks table i of the configuration. It fails only when the
// table cannot be looked at (PostgreSQL or BigQuery unreachable).
func (ch *Checker) Check(ctx context.Context, i int, tc config.TableConfig) (CheckReport, error) {
	var r CheckReport
	src, err := pgsource.Open(ctx, ch.c.PG, tc.Spec())
	if err != nil {
		for _, e := range flatten(err) {
			if !errors.Is(e, pgsource.ErrUnsupported) {
				return r, err
			}
			r.Problems = append(r.Problems, NameSpecErrors(e, Variables(ch.c, i)))
		}
		return r, nil
	}
	defer src.Close()
	if err := bq.CheckColumnNames(src.Table()); err != nil {
		r.Problems = append(r.Problems, flatten(err)...)
	}
	warnings, problems, err := src.KeyCheck(ctx)
	if err != nil {
		return r, err
	}
	r.Warnings, r.Problems = append(r.Warnings, warnings...), append(r.Problems, problems...)
	if r.Changes, err = ch.followsChanges(ctx, src, i, tc); err != nil {
		if errors.Is(err, pgsource.ErrNoUpdatedAtIndex) || errors.Is(err, pgsource.ErrUpdatedAt) {
			r.Problems = append(r.Problems, err)
		} else {
			return r, err
		}
	}
	notes, err := partitionNotes(ctx, src, tc)
	if err != nil {
		return r, err
	}
	r.Warnings = append(r.Warnings, notes...)
	if ch.bq == nil {
		r.Warnings = append(r.Warnings, "the destination was not compared (BQ_PROJECT or BQ_DATASET unset): "+
			"set them to find columns changed since the last sync")
		return r, nil
	}
	if len(r.Problems) > 0 {
		return r, nil // the destination cannot be described yet
	}
	wh, err := bq.NewWarehouse(ch.bq, ch.c.BQ, tc.DestTable, src.Table())
	if err != nil {
		return r, err
	}
	if err := wh.CompareDestination(ctx); err != nil {
		if !errors.Is(err, bq.ErrSchema) && !errors.Is(err, bq.ErrOwned) {
			return r, err
		}
		r.Problems = append(r.Problems, fmt.Errorf("table %s: %w", tc.Table, err))
	}
	return r, nil
}

// partitionNotes says what BigQuery's day partitions make of the days the
// table would sync (bq.PartitionNote): days outside 1960..2159 and more
// days than a table's partitions. The first day is the configured start
// date, else the source's first row's.
func partitionNotes(ctx context.Context, src *pgsource.Source, tc config.TableConfig) ([]string, error) {
	first, ok, err := src.FirstDay(ctx)
	if err != nil || !ok {
		return nil, err
	}
	if start, ok := tc.Start(); ok && start.After(first) {
		first = start
	}
	last, _, err := src.LastDay(ctx)
	if err != nil {
		return nil, err
	}
	if today := time.Now().UTC().Truncate(24 * time.Hour); today.After(last) {
		last = today // the planner plans every day through today
	}
	return bq.PartitionNote(first, last), nil
}

// flatten lists the errors joined in err.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
