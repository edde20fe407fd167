package bqfidelity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

// loadOne loads one row into table through the proxy and returns the
// job's error reason and message.
func (f *fixture) loadOne(t *testing.T, table string) (string, string) {
	t.Helper()
	src := bigquery.NewReaderSource(strings.NewReader(`{"id":1,"ts":"2024-01-02 00:00:00"}` + "\n"))
	src.SourceFormat = bigquery.JSON
	ctx := ctxT(t, time.Minute)
	j, err := f.c.Dataset(f.dataset).Table(table).LoaderFrom(src).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := waitJob(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	return jobErr(t, st)
}

// The project's load jobs a day are counted over every table, failed
// ones included, and the next is refused with quotaExceeded.
func TestLoadJobsPerProjectPerDay(t *testing.T) {
	t.Parallel()
	f := start(t, Options{LoadJobsPerProjectPerDay: 3})
	for _, id := range []string{"a", "b", "c", "d"} {
		f.table(t, id, false)
	}
	f.p.Inject(Fault{Kind: "load", Table: "a", Count: 1, JobErrorReason: "backendError"})
	var got []string
	for _, id := range []string{"a", "b", "c", "d"} {
		r, msg := f.loadOne(t, id)
		got = append(got, r)
		if r == "quotaExceeded" && !strings.Contains(msg, "Your project exceeded quota for imports per project") {
			t.Fatalf("refusal message %q", msg)
		}
	}
	if got[0] != "backendError" || got[1] != "" || got[2] != "" || got[3] != "quotaExceeded" {
		t.Fatalf("four loads into four tables with 3 a day per project: %q", got)
	}
	if n := f.p.Stats().RateLimited[LimitLoadProjectDay]; n != 1 {
		t.Fatalf("RateLimited[%s] = %d, want 1", LimitLoadProjectDay, n)
	}
}

// tables.insert and tables.delete are table metadata updates: counted, and
// refused once the table's 10 s hold the limit.
func TestTablesInsertAndDeleteAreMetadataUpdates(t *testing.T) {
	t.Parallel()
	f := start(t, Options{TableMetadataUpdatesPer10s: 3}) // 5 by default; 3 keeps it inside one window
	tables := fmt.Sprintf("%sprojects/%s/datasets/%s/tables", f.p.Endpoint(), f.project, f.dataset)
	create := func() (int, string) {
		b, _ := json.Marshal(map[string]any{
			"tableReference": map[string]any{"projectId": f.project, "datasetId": f.dataset, "tableId": "ev"},
			"schema":         map[string]any{"fields": []any{map[string]any{"name": "id", "type": "INT64"}}},
		})
		resp, err := send(t, http.MethodPost, tables, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, reasonOf(resp)
	}
	drop := func() (int, string) {
		resp, err := send(t, http.MethodDelete, tables+"/ev", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, reasonOf(resp)
	}
	for i, step := range []func() (int, string){create, drop, create} {
		if code, reason := step(); code/100 != 2 {
			t.Fatalf("step %d: %d %s", i+1, code, reason)
		}
	}
	if code, reason := drop(); code != 403 || reason != "rateLimitExceeded" {
		t.Fatalf("a fourth update (tables.delete) within 10 s: %d %s, want 403 rateLimitExceeded", code, reason)
	}
	if code, reason := patch(t, f, "x"); code != 403 || reason != "rateLimitExceeded" {
		t.Fatalf("tables.patch after create, delete, create: %d %s, want 403 rateLimitExceeded", code, reason)
	}
	if n := f.p.Stats().RateLimited[LimitTableMetadata]; n != 2 {
		t.Fatalf("RateLimited[%s] = %d, want 2", LimitTableMetadata, n)
	}
}

func reasonOf(resp *http.Response) string {
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if e, ok := body["error"].(map[string]any); ok {
		if errs, _ := e["errors"].([]any); len(errs) > 0 {
			r, _ := errs[0].(map[string]any)["reason"].(string)
			return r
		}
	}
	return ""
}
