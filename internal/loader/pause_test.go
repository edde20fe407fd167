package loader

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/syncstate"
)

type countingControl struct {
	calls  int
	paused bool
	err    error
}

func (c *countingControl) Paused(context.Context, string) (bool, syncstate.Entry, error) {
	c.calls++
	return c.paused, syncstate.Entry{Writer: "op"}, c.err
}

// The cache answers "running" within its ttl, per table, and asks again
// after it; an error is not remembered.
func TestCachedControl(t *testing.T) {
	t.Parallel()
	inner := &countingControl{}
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c := CachedControl(inner, 30*time.Second).(*cachedControl)
	c.now = func() time.Time { return now }
	ask := func(table string) bool {
		t.Helper()
		p, _, err := c.Paused(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := ask("a")
	if second := ask("a"); first || second || inner.calls != 1 {
		t.Fatalf("two asks within the ttl: %d calls, want 1", inner.calls)
	}
	ask("b")
	if inner.calls != 2 {
		t.Fatalf("another table: %d calls, want 2", inner.calls)
	}
	inner.paused = true
	now = now.Add(31 * time.Second)
	if !ask("a") || inner.calls != 3 {
		t.Fatalf("after the ttl: %d calls, want 3 and the new answer", inner.calls)
	}
	inner.err = errors.New("down")
	now = now.Add(time.Minute)
	if _, _, err := c.Paused(context.Background(), "a"); err == nil {
		t.Fatal("error not passed on")
	}
	inner.err = nil
	inner.paused = false
	ask("a")
	if inner.calls != 5 {
		t.Fatalf("an error was cached: %d calls, want 5", inner.calls)
	}
}

// A resume reaches a loader at once: a loader that saw the pause a moment
// ago asks again before it drops a message, so the messages of a planner
// run right after `planner resume` are worked (issue: they were acked
// without work for up to the ttl, and their dates then looked queued for
// PLANNER_QUEUED).
func TestCachedControlNeverDropsOnACachedPause(t *testing.T) {
	t.Parallel()
	inner := &countingControl{paused: true}
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c := CachedControl(inner, 30*time.Second).(*cachedControl)
	c.now = func() time.Time { return now }
	if p, _, err := c.Paused(context.Background(), "a"); err != nil || !p {
		t.Fatalf("paused table: %v, %v", p, err)
	}
	inner.paused = false // planner resume
	now = now.Add(time.Second)
	if p, _, err := c.Paused(context.Background(), "a"); err != nil || p {
		t.Fatalf("a second after the resume the loader still drops the message (paused=%v, %v)", p, err)
	}
	if inner.calls != 2 {
		t.Fatalf("%d reads of the state, want 2 (a pause is read fresh)", inner.calls)
	}
}
