package loader

import (
	"context"
	"sync"
	"time"

	"github.com/pgbq/pgbq/internal/syncstate"
)

// CachedControl is a Control that asks c at most once per ttl and table:
// a back-fill's messages then cost one sync_control query per table and
// interval instead of one per message, and a pause reaches every loader
// within ttl. Errors are not cached.
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
	if ok && c.now().Sub(p.read) < c.ttl {
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
