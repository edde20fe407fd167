package main

import (
	"testing"
	"time"
)

// Timestamps print with their microseconds: two rows a microsecond apart
// must not look the same.
func TestCellMicroseconds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2024, 3, 1, 12, 0, 0, 1000, time.UTC), "2024-03-01T12:00:00.000001Z"},
		{time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), "2024-03-01T12:00:00.000000Z"},
		{time.Date(2024, 3, 1, 13, 0, 0, 123456000, time.FixedZone("CET", 3600)), "2024-03-01T12:00:00.123456Z"},
	} {
		if got := cell(tc.in); got != tc.want {
			t.Errorf("cell(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
