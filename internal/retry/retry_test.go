package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"cloud.google.com/go/bigquery"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/api/googleapi"
)

func TestTransient(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"bigquery 503", &googleapi.Error{Code: 503}, true},
		{"bigquery 429", fmt.Errorf("load: %w", &googleapi.Error{Code: 429}), true},
		{"bigquery rate limit reason", &googleapi.Error{Code: 403, Errors: []googleapi.ErrorItem{{Reason: "rateLimitExceeded"}}}, true},
		{"bigquery dml queue", &googleapi.Error{Code: 400, Message: "Too many DML statements outstanding against table"}, true},
		{"bigquery invalid query", &googleapi.Error{Code: 400, Message: "Syntax error"}, false},
		{"bigquery not found", &googleapi.Error{Code: 404}, false},
		{"job internalError", fmt.Errorf("job x: %w", &bigquery.Error{Reason: "internalError"}), true},
		{"job backendError", &bigquery.Error{Reason: "backendError"}, true},
		{"job rateLimitExceeded", &bigquery.Error{Reason: "rateLimitExceeded"}, true},
		{"job transaction conflict", &bigquery.Error{Reason: "invalidQuery", Message: "Transaction is aborted due to concurrent update against table p.d.t"}, true},
		{"job notFound", &bigquery.Error{Reason: "notFound", Message: "Not found: Table p:d.t"}, false},
		{"job invalid", &bigquery.Error{Reason: "invalid", Message: "Provided Schema does not match Table"}, false},
		{"postgres connection lost", &pgconn.PgError{Code: "08006"}, true},
		{"postgres shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"postgres undefined column", &pgconn.PgError{Code: "42703"}, false},
		{"deadline", context.DeadlineExceeded, true},
		{"canceled", context.Canceled, false},
		{"plain", errors.New("unsupported source table"), false},
	}
	for _, tc := range cases {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient = %v, want %v", tc.name, got, tc.want)
		}
	}
}
