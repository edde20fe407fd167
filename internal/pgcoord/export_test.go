package pgcoord

import (
	"context"
	"sync"
	"time"

	"cloud.google.com/go/civil"
)

// KeyDay is keyDay, for the tests against PostgreSQL.
var KeyDay = keyDay

// AnnounceAndClaim announces days in key's publish queue on one
// connection and claims them as a leader would (claim reads them back
// from pg_locks); it returns what was claimed and the claims' lock class.
// The locks go when release is called.
func AnnounceAndClaim(ctx context.Context, c *Coord, key string, days []civil.Date) (claimed []civil.Date, class int32, release func(), err error) {
	q, err := c.openQueue(ctx, key)
	if err != nil {
		return nil, 0, nil, err
	}
	release = func() { q.close(context.WithoutCancel(ctx), false) }
	for _, d := range days {
		if _, err := q.conn.Exec(ctx, `SELECT pg_advisory_lock_shared($1, $2)`, q.announced, dayKey(d)); err != nil {
			release()
			return nil, 0, nil, err
		}
	}
	q.day = days[0]
	claimed, err = q.claim(ctx, len(days)+1)
	if err != nil {
		release()
		return nil, 0, nil, err
	}
	return claimed, q.claimed, release, nil
}

// tokenProbes holds the clocks and idleness tests gave each process's
// write tokens; the production structs carry none of it.
var tokenProbes sync.Map // *writeTokens → *tokenProbe

type tokenProbe struct {
	now  func() time.Time
	idle bool
}

func init() {
	tokenSeams.now = func(w *writeTokens) time.Time {
		if p, ok := tokenProbes.Load(w); ok && p.(*tokenProbe).now != nil {
			return p.(*tokenProbe).now()
		}
		return time.Now()
	}
	tokenSeams.idle = func(w *writeTokens) bool {
		p, ok := tokenProbes.Load(w)
		return ok && p.(*tokenProbe).idle
	}
}

// SetTokenClock makes c's process read the write tokens' time from now,
// and, with idle, never let a token go by its timer: an instance that
// gets no CPU once its request has returned.
func SetTokenClock(c *Coord, now func() time.Time, idle bool) {
	tokenProbes.Store(tokensFor(c.pool), &tokenProbe{now: now, idle: idle})
}
