package bqfidelity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// EnvEmulator is the raw emulator's endpoint, which dev/test.sh sets (the
// proxy must sit in front of the emulator, never of another proxy).
const EnvEmulator = "PGBQ_TEST_BQ_EMULATOR_ENDPOINT"

type fixture struct {
	p       *Proxy
	project string
	dataset string
	c       *bigquery.Client // through the proxy
	raw     *bigquery.Client // straight to the emulator
}

func start(t *testing.T, opt Options) *fixture {
	t.Helper()
	emu := os.Getenv(EnvEmulator)
	if emu == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run the tests with `make test`", EnvEmulator)
		}
		t.Skipf("%s is not set: `make test` starts the BigQuery emulator and sets it", EnvEmulator)
	}
	project := os.Getenv("PGBQ_TEST_BQ_PROJECT")
	if project == "" {
		project = "pgbq-local"
	}
	p, err := Start(emu, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx := context.Background()
	c, err := bigquery.NewClient(ctx, project, option.WithEndpoint(p.Endpoint()), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := bigquery.NewClient(ctx, project, option.WithEndpoint(emu), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{p: p, project: project, dataset: name("fid"), c: c, raw: raw}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := raw.Dataset(f.dataset).Create(cctx, &bigquery.DatasetMetadata{Location: "US"}); err != nil {
		t.Fatalf("create dataset: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = raw.Dataset(f.dataset).DeleteWithContents(ctx)
		c.Close()
		raw.Close()
	})
	return f
}

func name(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventSchema is a day-partitioned test table: id, ts.
var eventSchema = bigquery.Schema{
	{Name: "id", Type: bigquery.IntegerFieldType},
	{Name: "ts", Type: bigquery.TimestampFieldType},
}

// table creates a table straight on the emulator (not through the limits).
func (f *fixture) table(t *testing.T, id string, partitioned bool) {
	t.Helper()
	md := &bigquery.TableMetadata{Schema: eventSchema}
	if partitioned {
		md.TimePartitioning = &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: "ts"}
	}
	if err := f.raw.Dataset(f.dataset).Table(id).Create(ctxT(t, 30*time.Second), md); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
}

func (f *fixture) ref(id string) string { return fmt.Sprintf("`%s.%s.%s`", f.project, f.dataset, id) }

// rawExec runs SQL straight on the emulator.
func (f *fixture) rawExec(t *testing.T, sql string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	j, err := f.raw.Query(sql).Run(ctx)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	st, err := j.Status(ctx)
	if err != nil || st.Err() != nil {
		t.Fatalf("%s: %v %v", sql, err, st.Err())
	}
}

// count reads one number straight from the emulator.
func (f *fixture) count(t *testing.T, sql string) int64 {
	t.Helper()
	it, err := f.raw.Query(sql).Read(ctxT(t, time.Minute))
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		t.Fatalf("%s: no row: %v", sql, err)
	}
	if err := it.Next(&row); err != iterator.Done {
		t.Fatalf("%s: more than one row", sql)
	}
	n, ok := row[0].(int64)
	if !ok {
		t.Fatalf("%s: got %T %v", sql, row[0], row[0])
	}
	return n
}

// jobErr is the reason and message of a job's errorResult.
func jobErr(t *testing.T, st *bigquery.JobStatus) (reason, msg string) {
	t.Helper()
	if st == nil || st.Err() == nil {
		return "", ""
	}
	var e *bigquery.Error
	if errors.As(st.Err(), &e) {
		return e.Reason, e.Message
	}
	return "?", st.Err().Error()
}

// waitJob polls jobs.get until DONE (bounded by ctx).
func waitJob(ctx context.Context, j *bigquery.Job) (*bigquery.JobStatus, error) {
	for {
		st, err := j.Status(ctx)
		if err != nil {
			return nil, err
		}
		if st.Done() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func httpCode(err error) int {
	var e *googleapi.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func apiReason(err error) string {
	var e *googleapi.Error
	if errors.As(err, &e) && len(e.Errors) > 0 {
		return e.Errors[0].Reason
	}
	return ""
}

func day(s string) time.Time {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return d
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// send makes one HTTP request to the proxy with a JSON body (nil: none),
// bound to the test's context.
func send(t *testing.T, method, url string, body io.Reader) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return http.DefaultClient.Do(req)
}
