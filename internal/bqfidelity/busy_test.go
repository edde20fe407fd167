package bqfidelity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// A table whose metadata window a test keeps full refuses its
// tables.delete as a full window does, until the test releases it; other
// tables are not touched.
func TestFilledMetadataWindowRefusesUntilReleased(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	tables := fmt.Sprintf("%sprojects/%s/datasets/%s/tables", f.p.Endpoint(), f.project, f.dataset)
	create := func(id string) {
		b, _ := json.Marshal(map[string]any{
			"tableReference": map[string]any{"projectId": f.project, "datasetId": f.dataset, "tableId": id},
			"schema":         map[string]any{"fields": []any{map[string]any{"name": "id", "type": "INT64"}}},
		})
		resp, err := send(t, http.MethodPost, tables, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("create %s: %d", id, resp.StatusCode)
		}
	}
	drop := func(id string) (int, string) {
		resp, err := send(t, http.MethodDelete, tables+"/"+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, reasonOf(resp)
	}
	create("full")
	create("other")
	release := f.p.FillMetadataWindow("full")
	if code, reason := drop("full"); code != 403 || reason != "rateLimitExceeded" {
		t.Fatalf("tables.delete of a table whose window is full: %d %s, want 403 rateLimitExceeded", code, reason)
	}
	if code, reason := drop("other"); code/100 != 2 {
		t.Fatalf("tables.delete of another table: %d %s", code, reason)
	}
	release()
	release() // twice is once
	if code, reason := drop("full"); code/100 != 2 {
		t.Fatalf("tables.delete after the release: %d %s", code, reason)
	}
	if n := f.p.Stats().RateLimited[LimitTableMetadata]; n != 1 {
		t.Fatalf("RateLimited[%s] = %d, want 1", LimitTableMetadata, n)
	}
}
