package testenv

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test with reason once
// timeout has passed. cond runs on the test's goroutine, so it may itself
// fail the test (say, when the process it waits on has ended).
func WaitFor(t testing.TB, timeout time.Duration, reason string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, reason)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting for %s", reason)
		}
	}
}
