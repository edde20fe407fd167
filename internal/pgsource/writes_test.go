package pgsource_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/testenv"
)

// The loader service has CPU only during requests (cpu_idle): a write
// token whose release waits for a timer stays taken for as long as its
// instance idles. A process takes every write token of a table with
// publishes by load, then idles; another process is refused a publish by
// load while the tokens' window lasts, and allowed one after it (by the
// tokens' clock, moved on by the test), whatever the idle process does.
func TestWriteTokensEndWithTheirWindow(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PG(t)
	testenv.Exec(t, pool, `CREATE TABLE q (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	idle, busy := openQ(ctx, t, dsn), openQ(ctx, t, dsn)
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	pgsource.SetTokenClock(idle, clock, true)
	pgsource.SetTokenClock(busy, clock, false)
	const key = "p.d.idle"
	alone := func(src *pgsource.Source) bool {
		t.Helper()
		ran, err := src.PublishAlone(ctx, key, 0, func(_ context.Context, started func()) error {
			started()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ran
	}
	for i := range pgsource.TableWrites {
		if !alone(idle) {
			t.Fatalf("publish by load %d of %d refused with tokens free", i+1, pgsource.TableWrites)
		}
	}
	if alone(busy) {
		t.Fatalf("a publish by load ran with %d publishes in the window", pgsource.TableWrites)
	}
	offset.Store(int64(2*pgsource.TableWriteWindow + time.Millisecond))
	if !alone(busy) {
		t.Fatal("two windows later, the idle instance's write tokens still keep every publish by load of the table out")
	}
}
