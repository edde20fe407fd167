package bq

import (
	"context"
	"testing"
	"time"
)

// The sixth start within the window waits until the first leaves it.
func TestPacerKeepsFivePerWindow(t *testing.T) {
	t.Parallel()
	var p Pacer
	ctx := context.Background()
	for range TableWritesPer10s {
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := p.Wait(short); err == nil {
		t.Fatal("a sixth job started within the window")
	}
	p.mu.Lock()
	p.starts[0] = p.starts[0].Add(-paceWindow) // the first start is now old enough
	p.mu.Unlock()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// A table made just now leaves room for four job starts, not five: its
// creation counts toward the same limit.
func TestPacerCountsRecordedWrites(t *testing.T) {
	t.Parallel()
	var p Pacer
	ctx := context.Background()
	p.Record(time.Now().Add(-time.Second))
	p.Record(time.Now().Add(-2 * paceWindow)) // long ago: does not count
	for range TableWritesPer10s - 1 {
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := p.Wait(short); err == nil {
		t.Fatal("a fifth job started within the window of the table's creation")
	}
}
