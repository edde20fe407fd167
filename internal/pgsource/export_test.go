package pgsource

import (
	"context"

	"cloud.google.com/go/civil"
)

// KeyDay is keyDay, for the tests against PostgreSQL.
var KeyDay = keyDay

// AnnounceAndClaim announces days in key's publish queue on one
// connection and claims them as a leader would (claim reads them back
// from pg_locks); it returns what was claimed and the claims' lock class.
// The locks go when release is called.
func AnnounceAndClaim(ctx context.Context, s *Source, key string, days []civil.Date) (claimed []civil.Date, class int32, release func(), err error) {
	q, err := s.openQueue(ctx, key)
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

// ZoneBoundsSQL is zoneBoundsSQL.
var ZoneBoundsSQL = zoneBoundsSQL
