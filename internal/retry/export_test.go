package retry

import (
	"time"

	"github.com/googleapis/gax-go/v2"
)

// The tests of Do count attempts, not seconds: pause microseconds.
func init() {
	backoff = gax.Backoff{Initial: time.Microsecond, Max: 10 * time.Microsecond, Multiplier: 2}
}
