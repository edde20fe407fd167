package testenv

import (
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// EnvNow pins the day of every test that takes its clock from Clock: an
// RFC 3339 time after 2025-01-01 (the fixed-date fixtures lie before it),
// e.g. PGBQ_TEST_NOW=2026-12-31T23:59:00Z. Unset, tests run at the wall
// clock. dev/test.sh --clocks runs the date-sensitive packages at each
// of the awkward times.
const EnvNow = "PGBQ_TEST_NOW"

// Clock returns the clock a test hands to the code under test: pinned at
// PGBQ_TEST_NOW when that is set, else at the wall clock when the test
// starts. See ClockAt.
func Clock(t testing.TB) func() time.Time {
	t.Helper()
	v := os.Getenv(EnvNow)
	if v == "" {
		return ClockAt(time.Now().UTC())
	}
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		t.Fatalf("%s=%q is not an RFC 3339 time: %v", EnvNow, v, err)
	}
	if at.Before(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("%s=%s lies before 2025-01-01, among the fixed dates the fixtures use", EnvNow, v)
	}
	return ClockAt(at.UTC())
}

// ClockAt returns a clock pinned at at: each reading is one microsecond
// after the one before, so time stamps taken from it still order events
// (sync_control keeps the newest row per date) while the day it shows
// does not depend on how long the test runs.
func ClockAt(at time.Time) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return at.Add(time.Duration(n.Add(1)) * time.Microsecond) }
}
