package pgsource

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The publish queue lets the loaders of one destination table publish
// their dates together: a date ready to publish is announced, one loader
// at a time takes the table's turn and publishes every announced date in
// one statement, and tells the others which dates it published. It keeps
// no state of its own: an announcement is a shared advisory lock on (the
// table's key, the date), which PostgreSQL lists in pg_locks for as long
// as its session lives; the turn is an exclusive advisory lock; the news
// is a NOTIFY. A loader that dies takes its announcement and its turn with
// it, and nothing is written to the source database.

// publishedChannel carries "key date,date,…" after each batch.
const publishedChannel = "pgbq_published"

// PublishBatch is what a leader does with its turn: publish the dates
// (its own first), returning those it published.
type PublishBatch func(ctx context.Context, days []civil.Date) ([]civil.Date, error)

// PublishTogether announces day as ready to publish under key (the
// destination table) and returns once it is published: by this process,
// when it gets the turn first (lead is then called with day and the other
// announced dates, at most limit of them), or by another that publishes it
// in its batch. The turn is held for hold(n) after a batch of n dates
// started, so that batches of any number of processes keep the table's
// rate limits. Everything runs on one connection.
func (s *Source) PublishTogether(ctx context.Context, key string, day civil.Date, limit int, hold func(n int) time.Duration, lead PublishBatch) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("publish queue %s: %w", key, err)
	}
	q := &publishQueue{conn: conn, class: queueClass(key), turn: lockID("publish/" + key), day: day}
	err = q.run(ctx, limit, hold, lead)
	if err != nil && q.conn != nil {
		// A call cut short may have been granted the turn after all: the
		// connection goes, and its locks with it.
		q.conn.Conn().Close(context.WithoutCancel(ctx))
	}
	q.close()
	return err
}

type publishQueue struct {
	conn  *pgxpool.Conn
	class int32 // the announcements' first key: the table
	turn  int64
	day   civil.Date
	held  bool // holds the turn; released by close unless handed to a timer
}

var epoch = civil.Date{Year: 1970, Month: 1, Day: 1}

func queueClass(key string) int32 {
	h := fnv.New32a()
	h.Write([]byte("pgbq ready\x00" + key))
	return int32(h.Sum32() & 0x7fffffff)
}

// lockID is the 64-bit advisory lock key of name.
func lockID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("pgbq\x00" + name))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// pollEvery bounds how long an announced date waits between two looks at
// the turn; notifications end the wait sooner.
const pollEvery = 250 * time.Millisecond

func (q *publishQueue) run(ctx context.Context, limit int, hold func(n int) time.Duration, lead PublishBatch) error {
	// Listen before announcing: no batch that includes the date can be
	// missed.
	if _, err := q.conn.Exec(ctx, "LISTEN "+publishedChannel); err != nil {
		return fmt.Errorf("publish queue: listen: %w", err)
	}
	if _, err := q.conn.Exec(ctx, `SELECT pg_advisory_lock_shared($1, $2)`, q.class, int32(q.day.DaysSince(epoch))); err != nil {
		return fmt.Errorf("publish queue: announce %s: %w", q.day, err)
	}
	for {
		var got bool
		if err := q.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, q.turn).Scan(&got); err != nil {
			return fmt.Errorf("publish queue: turn: %w", err)
		}
		if got {
			q.held = true
			return q.lead(ctx, limit, hold, lead)
		}
		published, err := q.await(ctx)
		if err != nil || published {
			return err
		}
	}
}

// await waits up to pollEvery for news that the date was published.
func (q *publishQueue) await(ctx context.Context) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, pollEvery)
	defer cancel()
	for {
		// One notification a call, those read with other messages first.
		n, err := q.conn.Conn().WaitForNotification(wctx)
		if err != nil {
			if ctx.Err() == nil && wctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("publish queue: wait: %w", err)
		}
		if q.names(n.Payload) {
			return true, nil
		}
	}
}

// names reports whether a notification's payload lists the date under
// this queue's key.
func (q *publishQueue) names(payload string) bool {
	cls, days, ok := strings.Cut(payload, " ")
	if !ok || cls != fmt.Sprint(q.class) {
		return false
	}
	return slices.Contains(strings.Split(days, ","), q.day.String())
}

// lead publishes the date and the other announced ones, then tells the
// others. The turn is handed on hold(n) after the batch started, or when
// it ended if that is later.
func (q *publishQueue) lead(ctx context.Context, limit int, hold func(n int) time.Duration, lead PublishBatch) error {
	rows, err := q.conn.Query(ctx, `SELECT objid::bigint FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND classid::bigint = $1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY 1`, q.class)
	if err != nil {
		return fmt.Errorf("publish queue: read announcements: %w", err)
	}
	days := []civil.Date{q.day}
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("publish queue: read announcements: %w", err)
		}
		if d := epoch.AddDays(int(n)); d != q.day && len(days) < limit {
			days = append(days, d)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("publish queue: read announcements: %w", err)
	}
	start := time.Now()
	done, err := lead(ctx, days)
	if len(done) > 0 {
		names := make([]string, len(done))
		for i, d := range done {
			names[i] = d.String()
		}
		if _, nerr := q.conn.Exec(ctx, `SELECT pg_notify($1, $2)`, publishedChannel, fmt.Sprint(q.class)+" "+strings.Join(names, ",")); nerr != nil && err == nil {
			// The others publish their dates again; no harm but time.
			err = fmt.Errorf("publish queue: notify: %w", nerr)
		}
	}
	if wait := hold(len(days)) - time.Since(start); wait > 0 {
		q.held = false
		conn, turn := q.conn, q.turn
		q.conn = nil
		// Unannounce now; the turn goes with the connection later.
		unannounce(conn, q.class, q.day)
		time.AfterFunc(wait, func() { releaseTurn(conn, turn) })
	}
	return err
}

func unannounce(conn *pgxpool.Conn, class int32, day civil.Date) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock_shared($1, $2)`, class, int32(day.DaysSince(epoch))); err != nil {
		conn.Conn().Close(ctx)
	}
}

// releaseTurn unlocks the turn and gives the connection back, clean: a
// connection that cannot be cleaned is closed (its locks die with it).
func releaseTurn(conn *pgxpool.Conn, turn int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, turn); err != nil {
		conn.Conn().Close(ctx)
	} else if _, err := conn.Exec(ctx, "UNLISTEN "+publishedChannel); err != nil {
		conn.Conn().Close(ctx)
	}
	conn.Release()
}

// close ends the queue's part: unannounce, hand the turn on, stop
// listening, give the connection back.
func (q *publishQueue) close() {
	if q.conn == nil {
		return
	}
	unannounce(q.conn, q.class, q.day)
	if q.held {
		releaseTurn(q.conn, q.turn)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := q.conn.Exec(ctx, "UNLISTEN "+publishedChannel); err != nil {
		q.conn.Conn().Close(ctx)
	}
	q.conn.Release()
}
