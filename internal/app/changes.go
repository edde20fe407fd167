package app

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"
	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Changes is how the planner follows table t's changes, from its
// updated-at column (nil for an append-only table). It fails, naming the
// column and the variable, when the column is missing, of another type,
// or has no index: without one, every run would read the whole table.
func Changes(ctx context.Context, c *config.Common, i int, t *Table, state *syncstate.Store) (*planner.Changes, error) {
	if t.Config.UpdatedAt == "" {
		return nil, nil
	}
	ch, err := changeFinder(ctx, t.Source, t.Config.UpdatedAt, updatedAtVar(c, i))
	if err != nil {
		return nil, err
	}
	// The column's name in BigQuery, for the sweep's sums of its values.
	dest := t.Config.UpdatedAt
	if to, ok := t.Config.Columns[dest]; ok {
		dest = to
	}
	return &planner.Changes{Column: t.Config.UpdatedAt, Finder: ch, Log: state, Grace: c.Sync.ChangesGrace, Fresh: c.Sync.Grace / 2,
		SweepDays: c.Sync.SweepDays,
		SourceVersions: func(ctx context.Context, from, to time.Time) (map[civil.Date]int64, bool, error) {
			sums, err := ch.DayVersions(ctx, from, to)
			return sums, err == nil, err
		},
		DestVersions: func(ctx context.Context, from, to time.Time) (map[civil.Date]int64, bool, error) {
			return t.Warehouse.DayVersions(ctx, dest, pgsource.VersionModulus, from, to)
		},
	}, nil
}

// updatedAtVar names the setting of table i's updated-at column.
func updatedAtVar(c *config.Common, i int) string {
	if c.Sync.Tables != "" {
		return fmt.Sprintf("SYNC_TABLES[%d].updated_at", i)
	}
	return "SYNC_UPDATED_AT_COLUMN"
}

// changeFinder opens the updated-at column of src and checks its index;
// errors name the setting.
func changeFinder(ctx context.Context, src *pgsource.Source, column, setting string) (*pgsource.Changes, error) {
	ch, err := src.Changes(ctx, column)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	ok, err := ch.Indexed(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w: create one, e.g. CREATE INDEX CONCURRENTLY ON %s (%s)",
			setting, pgsource.ErrNoUpdatedAtIndex, src.Name(), pgx.Identifier{column}.Sanitize())
	}
	return ch, nil
}

// followsChanges says what the table gets (planner check): append-only,
// or its updates and deletes followed; a problem when the updated-at
// column cannot serve.
func (ch *Checker) followsChanges(ctx context.Context, src *pgsource.Source, i int, tc config.TableConfig) (string, error) {
	if tc.UpdatedAt == "" {
		return (*planner.Changes)(nil).Describe(0), nil
	}
	if _, err := changeFinder(ctx, src, tc.UpdatedAt, updatedAtVar(ch.c, i)); err != nil {
		return "", err
	}
	c := &planner.Changes{Column: tc.UpdatedAt, Grace: ch.c.Sync.ChangesGrace, SweepDays: ch.c.Sync.SweepDays}
	days := 0
	if first, ok, err := src.FirstDay(ctx); err == nil && ok {
		if start, ok := tc.Start(); ok && start.After(first) {
			first = start
		}
		days = int(time.Since(first).Hours() / 24) // through yesterday
	}
	return c.Describe(days), nil
}
