package pgcoord

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Write tokens count the publishes that wrote a destination table in the
// last TableWriteWindow, across processes: a publish that starts takes
// one of TableWrites advisory locks of the table, if one is free, and
// keeps it for TableWriteWindow after its start. BigQuery refuses a load,
// copy or query job writing a table that already had 5 writes in the
// last 10 s (DML counts toward them without being refused:
// https://cloud.google.com/bigquery/quotas#standard_tables), so a publish
// by load job (PublishAlone) may only start with a token in hand. A
// process keeps its tokens on one connection of its own, so that holding
// them takes no connection from the pool; a process that dies lets its
// tokens go, which can only make a later load meet rateLimitExceeded.
//
// Tokens expire by construction. A process lets a token go by a timer
// once its window has passed, but the loader service has CPU only during
// requests (Cloud Run's cpu_idle), so an idle instance may hold a lock
// for minutes. So each token's lock is of a window of time — token i of
// window b, windows TableWriteWindow long counted from the Unix epoch —
// and token i is free in window b when no session holds it in b or b-1:
// two starts on one token are at least TableWriteWindow apart, so at
// most TableWrites start in any TableWriteWindow, and a lock left held by
// an idle instance stops counting two windows after it was taken.
const (
	TableWrites      = 5
	TableWriteWindow = 10*time.Second + 500*time.Millisecond
)

type writeTokens struct {
	pool *pgxpool.Pool
	mu   sync.Mutex
	conn *pgx.Conn
	held map[int64]bool // tokens this process holds (advisory locks nest within a session)
}

// tokensByPool gives every Source of one pool the same tokens.
var tokensByPool sync.Map

func tokensFor(pool *pgxpool.Pool) *writeTokens {
	t, _ := tokensByPool.LoadOrStore(pool, &writeTokens{pool: pool, held: map[int64]bool{}})
	return t.(*writeTokens)
}

// tokenID is the lock of token i of key in window b.
func tokenID(key string, i int, b int64) int64 {
	return lockID(fmt.Sprintf("publish-write/%d/%d/%s", i, b, key))
}

// window is the number of the write window at t.
func window(t time.Time) int64 { return t.UnixNano() / int64(TableWriteWindow) }

// tokenSeams are where tests reach into the write tokens (export_test.go
// sets them; nil in production): now is the tokens' clock, and idle, when
// it reports true, keeps a process's token timers from firing, as an
// instance that gets no CPU between requests (Cloud Run's cpu_idle) would.
var tokenSeams struct {
	now  func(w *writeTokens) time.Time
	idle func(w *writeTokens) bool
}

func (w *writeTokens) now() time.Time {
	if tokenSeams.now != nil {
		return tokenSeams.now(w)
	}
	return time.Now()
}

// take takes a free token of key, if there is one, for a write about to
// start; the token goes TableWriteWindow after the start that the
// returned function is given (once the write has started, or failed to).
func (w *writeTokens) take(ctx context.Context, key string) (started func(time.Time), ok bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil || w.conn.IsClosed() {
		conn, err := pgx.ConnectConfig(ctx, w.pool.Config().ConnConfig.Copy())
		if err != nil {
			return nil, false, fmt.Errorf("publish write tokens: connect: %w", err)
		}
		w.conn, w.held = conn, map[int64]bool{}
	}
	b := window(w.now())
	for i := range TableWrites {
		id, prev := tokenID(key, i, b), tokenID(key, i, b-1)
		if w.held[id] || w.held[prev] {
			continue
		}
		// Locked in this window, then free unless another session still
		// holds it in the window before.
		var got bool
		err := w.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1) AND NOT EXISTS (SELECT 1 FROM pg_locks
  WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND classid::bigint = $2 AND objid::bigint = $3
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
			id, int64(uint32(uint64(prev)>>32)), int64(uint32(prev))).Scan(&got)
		if err != nil {
			w.conn.Close(context.WithoutCancel(ctx))
			return nil, false, fmt.Errorf("publish write tokens: %w", err)
		}
		if !got {
			// Taken before in this window, or held in the one before: let
			// this window's lock go if this call got it.
			if _, err := w.conn.Exec(ctx, `SELECT pg_advisory_unlock($1) FROM pg_locks
  WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND pid = pg_backend_pid()
    AND classid::bigint = $2 AND objid::bigint = $3`, id, int64(uint32(uint64(id)>>32)), int64(uint32(id))); err != nil {
				w.conn.Close(context.WithoutCancel(ctx))
				return nil, false, fmt.Errorf("publish write tokens: %w", err)
			}
			continue
		}
		w.held[id] = true
		conn := w.conn
		var once sync.Once
		// The token outlives the request that took it: give runs on a
		// timer, on a context of its own.
		return func(start time.Time) { //nolint:contextcheck // see above
			once.Do(func() {
				if tokenSeams.idle != nil && tokenSeams.idle(w) {
					return
				}
				time.AfterFunc(time.Until(start.Add(TableWriteWindow)), func() { w.give(conn, id) })
			})
		}, true, nil
	}
	return nil, false, nil
}

// give lets token id go, if conn still holds it.
func (w *writeTokens) give(conn *pgx.Conn, id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if conn != w.conn || !w.held[id] {
		return
	}
	delete(w.held, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, id); err != nil {
		conn.Close(ctx) // its tokens go with it
	}
}

// close lets every token go.
func (w *writeTokens) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		// Closing the socket ends the session, and its locks with it.
		_ = w.conn.PgConn().Conn().Close()
		w.conn = nil
	}
}

// closeTokens lets every token of pool go.
func closeTokens(pool *pgxpool.Pool) {
	if t, ok := tokensByPool.LoadAndDelete(pool); ok {
		t.(*writeTokens).close()
	}
}

// PublishAlone runs publish (a load job replacing a day of the
// destination key: one of the table's refusable writes) by itself, when that cannot get in the way of the publish queue
// (PublishTogether) or of BigQuery's limits: it takes the table's turn
// without waiting, finds no date announced, takes every publish slot (no
// DML publish of the table runs) and a write token. Otherwise it does
// nothing and reports false, and the date goes through the queue. The
// turn is kept until the publish has ended and at least hold after its
// start. It reports whether publish ran; its error is publish's.
func (c *Coord) PublishAlone(ctx context.Context, key string, hold time.Duration, publish func(ctx context.Context, started func()) error) (ran bool, err error) {
	q, err := c.openQueue(ctx, key)
	if err != nil {
		return false, err
	}
	defer func() { q.close(context.WithoutCancel(ctx), err != nil && !ran) }()
	if got, err := q.try(ctx, q.turn); err != nil || !got {
		return false, err
	}
	var waiting bool
	if err := q.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2
  AND classid::bigint = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, q.announced).Scan(&waiting); err != nil {
		return false, fmt.Errorf("publish queue: read announcements: %w", err)
	}
	if waiting {
		return false, nil
	}
	for i := range PublishesInFlight {
		if got, err := q.try(ctx, slotID(i, key)); err != nil || !got {
			return false, err
		}
	}
	token, got, err := tokensFor(c.pool).take(ctx, key)
	if err != nil || !got {
		return false, err
	}
	var start time.Time
	err = publish(ctx, func() { start = time.Now(); token(start) })
	if start.IsZero() { // it never started, or did while the answer was lost
		start = time.Now()
		token(start)
	}
	time.Sleep(time.Until(start.Add(hold)))
	return true, err
}
