package pgcoord

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/civil"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The publish queue lets the loaders of one destination table publish
// their dates together: a date ready to publish is announced; one loader
// at a time takes the table's turn, claims every announced date that no
// publish in flight has claimed, starts one statement publishing them,
// hands the turn on once the table's rate limits allow the next start,
// and when the statement has ended tells the others which dates it
// published. Up to PublishesInFlight statements run at once. It keeps no
// state of its own: announcements and claims are advisory locks on (a key
// of the table, the date), which PostgreSQL lists in pg_locks for as long
// as their session lives; the turn and the in-flight slots are advisory
// locks too; the news is a NOTIFY. A loader that dies takes its
// announcement, claims, turn and slot with it, and nothing is written to
// the source database.

// publishedChannel carries "key date,date,…" after each batch.
const publishedChannel = "pgbq_published"

// PublishesInFlight is how many publish statements of one table run at
// once: BigQuery runs 2 mutating DML statements of a table at a time and
// queues the others (https://cloud.google.com/bigquery/docs/data-manipulation-language#update_delete_merge_dml_concurrency).
const PublishesInFlight = 2

// PublishBatch is what a leader does with its turn: publish the dates,
// calling started once the statement is under way, and return those it
// published.
type PublishBatch func(ctx context.Context, days []civil.Date, started func()) ([]civil.Date, error)

// PublishTogether announces day as ready to publish under key (the
// destination table) and returns once it is published: by this process,
// when it gets the turn while day is unclaimed (publish is then called with
// day and the other unclaimed announced dates, at most limit of them), or
// by another that publishes it in its batch. The turn is handed on hold(n)
// after a batch of n dates started, so that the batches of any number of
// processes keep the table's rate limits. Everything runs on one
// connection.
//
// mine reports that this call's own batch published day. Otherwise all
// the caller has is news: a NOTIFY, which may come from a batch that
// claimed day before the caller staged its last rows, or from any session
// of the database. It proves nothing about what the destination holds, so
// a caller that did not publish day itself counts the destination before
// it trusts it.
func (c *Coord) PublishTogether(ctx context.Context, key string, day civil.Date, limit int, hold func(n int) time.Duration, publish PublishBatch) (mine bool, err error) {
	q, err := c.openQueue(ctx, key)
	if err != nil {
		return false, err
	}
	q.day = day
	mine, err = q.run(ctx, limit, hold, publish)
	q.close(context.WithoutCancel(ctx), err != nil)
	return mine, err
}

// openQueue takes a connection for the publish queue of key.
func (c *Coord) openQueue(ctx context.Context, key string) (*publishQueue, error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("publish queue %s: %w", key, err)
	}
	return &publishQueue{pool: c.pool, conn: conn, key: key, announced: queueClass("ready", key), claimed: queueClass("claimed", key),
		turn: lockID("publish/" + key)}, nil
}

type publishQueue struct {
	pool               *pgxpool.Pool
	conn               *pgxpool.Conn
	key                string
	announced, claimed int32 // advisory lock classes of (class, date) locks
	turn               int64
	day                civil.Date
}

// firstDay is day 0 of the dates' lock keys.
var firstDay = civil.Date{Year: 1, Month: 1, Day: 1}

// maxDayKey is the key of 9999-12-31, the last date a message may name.
const maxDayKey = 3652058

// dayKey is a date's advisory lock object id: its days since 0001-01-01,
// 0..maxDayKey for every date the message contract accepts. pg_locks
// reports the two halves of an (int4, int4) lock as oids, unsigned: a key
// counted from 1970 was negative before it and read back as a date 11.7
// million years on, which no loader ever claimed, so the date's loader
// waited for ever. Counted from year 1, every key is non-negative and
// reads back the same either way.
func dayKey(d civil.Date) int32 { return int32(d.DaysSince(firstDay)) }

// keyDay is the date of a lock's object id as pg_locks reports it; ok is
// false for an id no date has.
func keyDay(objid int64) (d civil.Date, ok bool) {
	if objid < 0 || objid > maxDayKey {
		return civil.Date{}, false
	}
	return firstDay.AddDays(int(objid)), true
}

// payload is the notification that the dates of class were published:
// "class date,date,…" (dates as YYYY-MM-DD, years 0001-9999).
func payload(class int32, days []civil.Date) string {
	names := make([]string, len(days))
	for i, d := range days {
		names[i] = d.String()
	}
	return fmt.Sprint(class) + " " + strings.Join(names, ",")
}

func queueClass(what, key string) int32 {
	h := fnv.New32a()
	h.Write([]byte("pgbq " + what + "\x00" + key))
	return int32(h.Sum32() & 0x7fffffff)
}

// lockID is the 64-bit advisory lock key of name.
func lockID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("pgbq\x00" + name))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// pollEvery bounds how long an announced date waits between two looks at
// the turn (and a leader between two looks for a free slot);
// notifications end the wait sooner.
const pollEvery = 250 * time.Millisecond

// run reports whether the date was published by this process's batch
// (true) or by another's, as its news said (false).
func (q *publishQueue) run(ctx context.Context, limit int, hold func(n int) time.Duration, publish PublishBatch) (bool, error) {
	// A pooled connection may hold notifications read before: news of
	// batches that ended before this announcement (the date published
	// once, then re-opened), which say nothing of what it stages now.
	q.forgetNews(ctx)
	// Listen before announcing: no batch that includes the date can be
	// missed.
	if _, err := q.conn.Exec(ctx, "LISTEN "+publishedChannel); err != nil {
		return false, fmt.Errorf("publish queue: listen: %w", err)
	}
	if _, err := q.conn.Exec(ctx, `SELECT pg_advisory_lock_shared($1, $2)`, q.announced, dayKey(q.day)); err != nil {
		return false, fmt.Errorf("publish queue: announce %s: %w", q.day, err)
	}
	for {
		got, err := q.try(ctx, q.turn)
		if err != nil {
			return false, err
		}
		if got {
			published, err := q.lead(ctx, limit, hold, publish)
			if err != nil || published {
				return published, err
			}
			// The date is in a batch in flight: wait for its news.
		}
		published, err := q.await(ctx)
		if err != nil || published {
			return false, err
		}
	}
}

func (q *publishQueue) try(ctx context.Context, lock int64) (bool, error) {
	var got bool
	if err := q.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lock).Scan(&got); err != nil {
		return false, fmt.Errorf("publish queue %s: lock: %w", q.key, err)
	}
	return got, nil
}

func (q *publishQueue) unlock(ctx context.Context, lock int64) error {
	if _, err := q.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lock); err != nil {
		return fmt.Errorf("publish queue %s: unlock: %w", q.key, err)
	}
	return nil
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

// forgetNews drops the notifications the connection has buffered; with
// a context already done, pgx hands out only those, without a read.
func (q *publishQueue) forgetNews(ctx context.Context) {
	done, cancel := context.WithCancel(ctx)
	cancel()
	for {
		if n, err := q.conn.Conn().WaitForNotification(done); err != nil || n == nil {
			return
		}
	}
}

// names reports whether a notification's payload lists the date under
// this queue's key.
func (q *publishQueue) names(payload string) bool {
	cls, days, ok := strings.Cut(payload, " ")
	if !ok || cls != fmt.Sprint(q.announced) {
		return false
	}
	return slices.Contains(strings.Split(days, ","), q.day.String())
}

// lead runs one batch with the turn held: it claims the announced dates
// no batch in flight has claimed (the date first), takes a slot, starts
// the batch, hands the turn on hold(n) after the start, and once the
// batch has ended tells the others and gives back claims and slot. It
// reports whether the date was published by it.
func (q *publishQueue) lead(ctx context.Context, limit int, hold func(n int) time.Duration, publish PublishBatch) (bool, error) {
	turnHeld := true
	defer func() {
		if turnHeld {
			_ = q.unlock(context.WithoutCancel(ctx), q.turn) // an error closes the connection (close)
		}
	}()
	days, err := q.claim(ctx, limit)
	if err != nil || len(days) == 0 {
		return false, err
	}
	defer q.unclaim(context.WithoutCancel(ctx), days)
	slot, err := q.slot(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = q.unlock(context.WithoutCancel(ctx), slot) }()

	type result struct {
		done []civil.Date
		err  error
	}
	started := make(chan time.Time, 1)
	res := make(chan result, 1)
	go func() {
		var once sync.Once
		done, err := publish(ctx, days, func() { once.Do(func() { started <- time.Now() }) })
		res <- result{done, err}
	}()
	var r result
	ended := false
	var at time.Time
	select {
	case at = <-started:
	case r = <-res:
		ended = true
		select { // it may have started and ended at once
		case at = <-started:
		default:
		}
	}
	if !at.IsZero() {
		// The statement is one of the table's writes: it takes a write
		// token if one is free, so that a publish by load job
		// (PublishAlone) sees it. DML is not refused for lack of one; a
		// token not taken (none free, PostgreSQL unreachable) can only
		// make such a load meet rateLimitExceeded.
		if token, got, err := tokensFor(q.pool).take(ctx, q.key); err == nil && got {
			token(at)
		}
		// The next batch may start hold(n) after this one did.
		time.Sleep(time.Until(at.Add(hold(len(days)))))
	}
	turnHeld = false
	if err := q.unlock(ctx, q.turn); err != nil {
		return false, err
	}
	if !ended {
		r = <-res
	}
	if len(r.done) > 0 {
		if _, err := q.conn.Exec(ctx, `SELECT pg_notify($1, $2)`, publishedChannel, payload(q.announced, r.done)); err != nil && r.err == nil {
			// The others publish their dates again; no harm but time.
			r.err = fmt.Errorf("publish queue: notify: %w", err)
		}
	}
	return slices.Contains(r.done, q.day), r.err
}

// claim claims up to limit announced dates that no batch in flight has
// claimed, the date first (if it is not claimed elsewhere).
func (q *publishQueue) claim(ctx context.Context, limit int) ([]civil.Date, error) {
	rows, err := q.conn.Query(ctx, `SELECT a.objid::bigint FROM pg_locks a
WHERE a.locktype = 'advisory' AND a.objsubid = 2 AND a.granted AND a.classid::bigint = $1
  AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND NOT EXISTS (SELECT 1 FROM pg_locks c WHERE c.locktype = 'advisory' AND c.objsubid = 2
    AND c.classid::bigint = $2 AND c.objid = a.objid AND c.database = a.database)
ORDER BY a.objid::bigint <> $3, 1`, q.announced, q.claimed, dayKey(q.day))
	if err != nil {
		return nil, fmt.Errorf("publish queue: read announcements: %w", err)
	}
	var days []civil.Date
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("publish queue: read announcements: %w", err)
		}
		if d, ok := keyDay(n); ok && !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("publish queue: read announcements: %w", err)
	}
	var got []civil.Date
	for _, d := range days {
		if len(got) == limit {
			break
		}
		var ok bool
		if err := q.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, q.claimed, dayKey(d)).Scan(&ok); err != nil {
			return nil, fmt.Errorf("publish queue: claim %s: %w", d, err)
		}
		if ok {
			got = append(got, d)
		}
	}
	return got, nil
}

func (q *publishQueue) unclaim(ctx context.Context, days []civil.Date) {
	for _, d := range days {
		if _, err := q.conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, q.claimed, dayKey(d)); err != nil {
			return // close drops the connection, and the claims with it
		}
	}
}

// slot waits for one of the PublishesInFlight slots.
func (q *publishQueue) slot(ctx context.Context) (int64, error) {
	for {
		for i := range PublishesInFlight {
			lock := slotID(i, q.key)
			got, err := q.try(ctx, lock)
			if err != nil || got {
				return lock, err
			}
		}
		select {
		case <-time.After(pollEvery / 2):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func slotID(i int, key string) int64 { return lockID(fmt.Sprintf("publish-slot/%d/%s", i, key)) }

// close ends the queue's part: every lock of the session (announcement,
// claims, turn, slot) is let go, listening stops, the connection goes
// back — or, after a failure that may have left it mid-call (a lock
// granted as the call was cut short), is closed, its locks with it.
func (q *publishQueue) close(ctx context.Context, failed bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if failed {
		q.conn.Conn().Close(ctx)
	} else if _, err := q.conn.Exec(ctx, "SELECT pg_advisory_unlock_all(); UNLISTEN "+publishedChannel); err != nil {
		q.conn.Conn().Close(ctx)
	}
	q.conn.Release()
}
