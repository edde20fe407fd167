package pgcoord_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pgcoord"
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
	dsn, _ := testenv.PG(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	idle, busy := openQ(ctx, t, dsn), openQ(ctx, t, dsn)
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	pgcoord.SetTokenClock(idle, clock, true)
	pgcoord.SetTokenClock(busy, clock, false)
	const key = "p.d.idle"
	alone := func(src *pgcoord.Coord) bool {
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
	for i := range pgcoord.TableWrites {
		if !alone(idle) {
			t.Fatalf("publish by load %d of %d refused with tokens free", i+1, pgcoord.TableWrites)
		}
	}
	if alone(busy) {
		t.Fatalf("a publish by load ran with %d publishes in the window", pgcoord.TableWrites)
	}
	offset.Store(int64(2*pgcoord.TableWriteWindow + time.Millisecond))
	if !alone(busy) {
		t.Fatal("two windows later, the idle instance's write tokens still keep every publish by load of the table out")
	}
}
