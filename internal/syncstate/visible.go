package syncstate

import (
	"context"
	"fmt"
	"time"

	"github.com/googleapis/gax-go/v2"
)

// Rows streamed into the log reach queries "within a few seconds" of the
// insertion, not at once
// (https://cloud.google.com/bigquery/docs/streaming-data-into-bigquery#dataavailability).
// A command that writes a row and then tells loaders to act on it — a
// re-opening followed by the date's message, a resume — must wait until
// the row can be read, or a loader quick enough reads the state before it
// and does nothing.

// VisibleWithin bounds the wait for a streamed row to be read back.
const VisibleWithin = 2 * time.Minute

// Await polls seen until it reports the row read (what names it in the
// error), for at most VisibleWithin.
func Await(ctx context.Context, what string, seen func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, VisibleWithin)
	defer cancel()
	bo := gax.Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Multiplier: 1.5}
	var last error
	for {
		ok, err := seen(ctx)
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if serr := gax.Sleep(ctx, bo.Pause()); serr != nil {
			if last != nil {
				return fmt.Errorf("wait until %s reads %s: %w (last read: %v)", View, what, serr, last)
			}
			return fmt.Errorf("wait until %s reads %s: %w", View, what, serr)
		}
	}
}
