package loader

import (
	"context"
	"sync"
	"time"

	"github.com/pgbq/pgbq/internal/syncstate"
)

// CachedControl is a Control that asks c at most once per ttl and table
// while the table runs: a back-fill's messages then cost one sync_control
// query per table and interval instead of one per message, and a pause
// reaches every loader within ttl. A "paused" answer is never served from
// the cache: a message is acked without work only on a fresh reading, so a
// planner run right after `planner resume` is not dropped by loaders that
// saw the pause moments before (its dates would then look queued for
// PLANNER_QUEUED). While a table is paused each of its messages costs one
// query; the planner publishes none then, so only messages already queued
// meet a pause. Errors are not cached.
func CachedControl(c Control, ttl time.Duration) Control {
	return &cachedControl{c: c, ttl: ttl, now: time.Now, m: map[string]pauseState{}}
}

type cachedControl struct {
	c   Control
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]pauseState
}

type pauseState struct {
	paused bool
	entry  syncstate.Entry
	read   time.Time
}

func (c *cachedControl) Paused(ctx context.Context, table string) (bool, syncstate.Entry, error) {
	c.mu.Lock()
	p, ok := c.m[table]
	c.mu.Unlock()
	if ok && !p.paused && c.now().Sub(p.read) < c.ttl {
		return p.paused, p.entry, nil
	}
	paused, e, err := c.c.Paused(ctx, table)
	if err != nil {
		return false, syncstate.Entry{}, err
	}
	c.mu.Lock()
	c.m[table] = pauseState{paused: paused, entry: e, read: c.now()}
	c.mu.Unlock()
	return paused, e, nil
}
