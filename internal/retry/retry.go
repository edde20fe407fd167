// Package retry decides which errors are worth retrying and retries them
// with exponential backoff.
package retry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/googleapis/gax-go/v2"
	"github.com/googleapis/gax-go/v2/apierror"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
)

// Transient reports whether err may go away if the operation is tried
// again: unavailable services, rate limits, BigQuery's DML queue and
// transaction conflicts, dropped connections.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "40"),                                 // serialization failure, deadlock
			strings.HasPrefix(pgErr.Code, "53"),                                 // insufficient resources
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, cannot connect now
			pgErr.Code == "57014": // statement timeout / cancel
			return true
		}
		return false
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var gErr *googleapi.Error
	if errors.As(err, &gErr) {
		switch gErr.Code {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusRequestTimeout:
			return true
		}
		for _, e := range gErr.Errors {
			switch e.Reason {
			case "rateLimitExceeded", "backendError", "internalError", "jobRateLimitExceeded":
				return true
			}
		}
		return transientMessage(gErr.Message)
	}
	var aErr *apierror.APIError
	if errors.As(err, &aErr) {
		switch aErr.GRPCStatus().Code() {
		case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.DeadlineExceeded:
			return true
		}
		return transientMessage(aErr.Error())
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	return transientMessage(err.Error())
}

// transientMessage recognises BigQuery errors that arrive as job errors
// rather than HTTP statuses.
func transientMessage(msg string) bool {
	msg = strings.ToLower(msg)
	for _, s := range []string{
		"too many dml statements outstanding",
		"could not serialize access",
		"concurrent update",
		"transaction is aborted",
		"exceeded rate limits",
		"connection refused",
		"connection reset",
		"unexpected eof",
		"backenderror",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Attempts bounds the calls Do makes: with the backoff below, about 30 s
// of trying before the error goes up (and, in the loader, becomes a 503
// and a Pub/Sub redelivery).
const Attempts = 8

// backoff paces the attempts of Do; tests shorten it (export_test.go).
var backoff = gax.Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2}

// Do calls f until it succeeds, fails with an error that is not transient,
// has been called Attempts times, or ctx ends. It returns f's last error.
// f receives the attempt number, starting at 0.
func Do(ctx context.Context, f func(ctx context.Context, attempt int) error) error {
	bo := backoff // a copy: its state is this call's
	for attempt := 0; ; attempt++ {
		err := f(ctx, attempt)
		if err == nil || !Transient(err) || attempt+1 >= Attempts {
			return err
		}
		// An ended context stops the retries even when the pause's timer
		// fired at the same moment.
		if serr := gax.Sleep(ctx, bo.Pause()); serr != nil || ctx.Err() != nil {
			return err
		}
	}
}
