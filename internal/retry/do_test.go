package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
)

// Do's contract: transient errors are retried up to Attempts calls, a
// permanent error and an ended context stop it at once, and the error
// returned is f's last.
func TestDo(t *testing.T) {
	t.Parallel()
	unavailable := &googleapi.Error{Code: 503}
	permanent := errors.New("no such column")
	cases := []struct {
		name string
		// errs[i] is what attempt i returns; past the end, the last again.
		errs      []error
		cancelAt  int // cancel the context during this attempt; -1: never
		wantCalls int
		wantErr   error
	}{
		{"success at once", []error{nil}, -1, 1, nil},
		{"transient then success", []error{unavailable, unavailable, nil}, -1, 3, nil},
		{"transient for good: capped", []error{unavailable}, -1, Attempts, unavailable},
		{"permanent: not retried", []error{permanent}, -1, 1, permanent},
		{"transient then permanent", []error{unavailable, permanent}, -1, 2, permanent},
		{"context canceled during an attempt", []error{unavailable}, 1, 2, unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var attempts []int
			err := Do(ctx, func(ctx context.Context, attempt int) error {
				attempts = append(attempts, attempt)
				if attempt == tc.cancelAt {
					cancel()
				}
				return tc.errs[min(attempt, len(tc.errs)-1)]
			})
			if err != tc.wantErr {
				t.Fatalf("Do = %v, want %v", err, tc.wantErr)
			}
			if len(attempts) != tc.wantCalls {
				t.Fatalf("f called %d times, want %d", len(attempts), tc.wantCalls)
			}
			for i, a := range attempts {
				if a != i {
					t.Fatalf("attempt numbers %v, want 0, 1, 2, ...", attempts)
				}
			}
		})
	}
}

// A context past its deadline makes f fail with DeadlineExceeded, which
// is transient, yet Do stops after that call instead of trying again.
func TestDoDeadlinePassed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancel()
	calls := 0
	err := Do(ctx, func(ctx context.Context, _ int) error {
		calls++
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want context.DeadlineExceeded after 1", err, calls)
	}
}
