package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/testenv"
)

// cloud-check through the fidelity layer, which is how it is tested here:
// every day synced once, the re-publish gives the same day, the repeated
// load is adopted, and overlapping mutating transactions conflict.
func TestCloudCheckThroughFidelityLayer(t *testing.T) {
	t.Parallel()
	dsn, _ := testenv.PG(t)
	b, _ := testenv.Fidelity(t, bqfidelity.Options{JobLatency: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cfg := bq.Config{Project: b.Project, Location: "US", Endpoint: b.Endpoint}
	if err := run(ctx, &out, cfg, dsn); err != nil {
		t.Fatalf("cloud-check: %v\n%s", err, out.String())
	}
	line := out.String()
	for _, want := range []string{"finished=3 ", "rows=1200 ", "republish=same ", "load_409=adopted "} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q: %s", want, line)
		}
	}
	m := regexp.MustCompile(`transaction_conflicts=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no transaction_conflicts in %s", line)
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 {
		t.Errorf("transaction_conflicts=%d: three overlapping mutating transactions on one table must conflict", n)
	}
}

// Without a project it says what is missing and fails.
func TestCloudCheckNeedsAProject(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), new(bytes.Buffer), bq.Config{}, "host=x")
	if err == nil || !regexp.MustCompile(`BQ_PROJECT`).MatchString(err.Error()) {
		t.Fatalf("err = %v, want one naming BQ_PROJECT", err)
	}
}
