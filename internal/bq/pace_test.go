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
