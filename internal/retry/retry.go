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

	"cloud.google.com/go/bigquery"
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
	// A BigQuery job that ended with an error: its errorResult reason
	// decides (BigQuery's error-messages page lists which are retryable).
	var jobErr *bigquery.Error
	if errors.As(err, &jobErr) {
		switch jobErr.Reason {
		case "backendError", "internalError", "rateLimitExceeded", "jobRateLimitExceeded", "jobBackendError", "jobInternalError":
			return true
		}
		return transientMessage(jobErr.Message)
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
		"concurrent update against table",
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

// RateLimited reports whether err is BigQuery's "not now": the reason
// rateLimitExceeded, on the request (403 or 429) or on a job's errorResult
// (BigQuery's troubleshooting page). A bare 429 without that reason is a
// plain transient failure.
func RateLimited(err error) bool { return hasReason(err, "rateLimitExceeded") }

// QuotaExceeded reports whether err is BigQuery's "not today": the reason
// quotaExceeded, on the request or on a job's errorResult.
func QuotaExceeded(err error) bool { return hasReason(err, "quotaExceeded") }

func hasReason(err error, reason string) bool {
	var jobErr *bigquery.Error
	if errors.As(err, &jobErr) {
		return jobErr.Reason == reason
	}
	var gErr *googleapi.Error
	if errors.As(err, &gErr) {
		for _, e := range gErr.Errors {
			if e.Reason == reason {
				return true
			}
		}
	}
	return false
}

// RateLimitPatience is how long Do waits out rate limits before they
// count as failures. BigQuery's per-table rate limits (5 writes per 10 s
// per table, 25 DML statements per 10 s) say "your turn will come": fifty
// loaders publishing into one table take turns for a minute or two rather
// than failing their messages. A limit that lasts longer is treated like
// any other transient failure.
const RateLimitPatience = time.Minute

// backoff paces the attempts of Do; tests shorten it (export_test.go).
var backoff = gax.Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2}

// Do calls f until it succeeds, fails with an error that is not transient,
// has failed Attempts times, or ctx ends. It returns f's last error. Rate
// limits do not count as failures for the first RateLimitPatience of
// rate limiting: they are waited out with the same jittered backoff. f
// receives the attempt number, starting at 0.
func Do(ctx context.Context, f func(ctx context.Context, attempt int) error) error {
	bo := backoff // a copy: its state is this call's
	failures := 0
	var limitedSince time.Time
	for attempt := 0; ; attempt++ {
		err := f(ctx, attempt)
		if err == nil || !Transient(err) {
			return err
		}
		patient := false
		if RateLimited(err) {
			if limitedSince.IsZero() {
				limitedSince = time.Now()
			}
			patient = time.Since(limitedSince) < RateLimitPatience
		}
		if !patient {
			if failures++; failures >= Attempts {
				return err
			}
		}
		// An ended context stops the retries even when the pause's timer
		// fired at the same moment.
		if serr := gax.Sleep(ctx, bo.Pause()); serr != nil || ctx.Err() != nil {
			return err
		}
	}
}
