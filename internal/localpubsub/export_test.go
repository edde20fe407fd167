package localpubsub

import (
	"context"
	"time"
)

// StartWithClock is New with pstest and the front on the clock now.
func StartWithClock(ctx context.Context, now func() time.Time) (*Server, error) {
	return start(ctx, "127.0.0.1:0", now)
}
