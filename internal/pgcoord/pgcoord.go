// Package pgcoord is the coordination that the loaders of a table hold in
// the source PostgreSQL database, in advisory locks and notifications and
// never in a table: a date's lease (Lease), the publish queue and its turn
// (PublishTogether), and the write tokens a publish by load job needs
// (PublishAlone). None of it is needed for correctness — the publish's
// fence and counts are (see package publish) — it saves duplicate work
// and keeps the loaders of a table within BigQuery's rate limits. A
// process that dies takes its locks with it, and nothing is written to
// the source database.
package pgcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Coord coordinates through one connection pool to the source database.
// Every Coord of one pool shares that pool's write tokens.
type Coord struct {
	pool *pgxpool.Pool
}

// New coordinates through pool.
func New(pool *pgxpool.Pool) *Coord { return &Coord{pool: pool} }

// Close lets every write token of the pool go; the pool's owner closes
// the pool.
func (c *Coord) Close() { closeTokens(c.pool) }

// ErrLocked means another process holds the lease.
var ErrLocked = errors.New("lease held by another process")

// Lease takes a session advisory lock named by key on a dedicated
// connection; it lasts until release is called or the connection dies.
// Correctness never depends on it: it only saves duplicate work.
func (c *Coord) Lease(ctx context.Context, key string) (release func(), err error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", key, err)
	}
	lockID := lockID(key)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockID).Scan(&ok); err != nil {
		// A call cut short may have been granted the lock after all: the
		// connection goes, and the lock with it.
		conn.Conn().Close(context.WithoutCancel(ctx))
		conn.Release()
		return nil, fmt.Errorf("lease %s: %w", key, err)
	}
	if !ok {
		conn.Release()
		return nil, ErrLocked
	}
	var once sync.Once
	// The release runs after the request's context may have ended.
	return func() { //nolint:contextcheck // see above
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockID); err != nil {
				// The lock dies with the connection.
				conn.Conn().Close(ctx)
			}
			conn.Release()
		})
	}, nil
}
