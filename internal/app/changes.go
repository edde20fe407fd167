package app

import (
	"context"
	"fmt"

	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Changes is how the planner follows table t's changes, from its
// updated-at column (nil for an append-only table). It fails, naming the
// column and the variable, when the column is missing, of another type,
// or has no index: without one, every run would read the whole table.
func Changes(ctx context.Context, c *config.Common, t *Table, state *syncstate.Store) (*planner.Changes, error) {
	if t.Config.UpdatedAt == "" {
		return nil, nil
	}
	ch, err := changeFinder(ctx, t.Source, t.Config.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &planner.Changes{Finder: ch, Log: state, Grace: c.Sync.ChangesGrace, Fresh: c.Sync.Grace / 2,
		SweepDays: c.Sync.SweepDays}, nil
}

// changeFinder opens the updated-at column of src and checks its index.
func changeFinder(ctx context.Context, src *pgsource.Source, column string) (*pgsource.Changes, error) {
	ch, err := src.Changes(ctx, column)
	if err != nil {
		return nil, fmt.Errorf("SYNC_UPDATED_AT_COLUMN: %w", err)
	}
	ok, err := ch.Indexed(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("SYNC_UPDATED_AT_COLUMN: %w: create one, e.g. CREATE INDEX CONCURRENTLY ON %s (%s)",
			pgsource.ErrNoUpdatedAtIndex, src.Name(), column)
	}
	return ch, nil
}

// followsChanges says what the table gets (planner check): append-only,
// or its updates and deletes followed; a problem when the updated-at
// column cannot serve.
func (ch *Checker) followsChanges(ctx context.Context, src *pgsource.Source, tc config.TableConfig) (string, error) {
	if tc.UpdatedAt == "" {
		return (*planner.Changes)(nil).Describe(), nil
	}
	f, err := changeFinder(ctx, src, tc.UpdatedAt)
	if err != nil {
		return "", err
	}
	c := &planner.Changes{Finder: f, Grace: ch.c.Sync.ChangesGrace, SweepDays: ch.c.Sync.SweepDays}
	s := c.Describe()
	if first, ok, err := src.FirstDay(ctx); err == nil && ok {
		if last, ok, err := src.LastDay(ctx); err == nil && ok && c.SweepDays > 0 {
			days := int(last.Sub(first).Hours()/24) + 1
			s += fmt.Sprintf("; deletes found within %d runs (%d days of history)", c.DeletesWithin(days), days)
		}
	}
	return s, nil
}
