package loader

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// A day is recorded finished only when a fingerprint of the source taken
// after its reading matches the destination: a row deleted and another
// inserted in the same day after the rows were read — the counts agree
// again — leaves the day reopened and read again, not finished holding
// the deleted row and lacking the new one. Shown on both publish paths.
func TestFinishOnlyOnAFingerprint(t *testing.T) {
	t.Parallel()
	for _, byLoad := range []bool{false, true} {
		t.Run(fmt.Sprintf("byLoad=%v", byLoad), func(t *testing.T) {
			t.Parallel()
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rnd := rand.New(rand.NewPCG(seed, 4))
			r := newRig(t)
			day := time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
			kind := keyedKinds[2] // uuid
			seedKeyed(t, r, kind, day, 120, rnd)
			s := openKeyed(r, 50)
			setNoDirect(s, !byLoad)
			var once sync.Once
			setHook(s, func(point string) error {
				if point != "published" {
					return nil
				}
				once.Do(func() {
					// After the publish, before the source is looked at
					// again: one row leaves the day and another joins it,
					// below the position the day was read to.
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if _, err := r.pool.Exec(ctx, `DELETE FROM keyed WHERE k = (SELECT k FROM keyed ORDER BY created_at, k LIMIT 1)`); err != nil {
						t.Error(err)
					}
					if _, err := r.pool.Exec(ctx, `INSERT INTO keyed VALUES ($1::uuid, 'late', $2)`, kind.gen(rnd), day.Add(time.Minute)); err != nil {
						t.Error(err)
					}
				})
				return nil
			})
			if got := r.syncAll(s, day); got != Finished {
				t.Fatalf("outcome = %v, want finished", got)
			}
			sameKeys(t, r, day)
		})
	}
}
