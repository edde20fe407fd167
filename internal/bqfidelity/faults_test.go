package bqfidelity

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

func TestFaultsAndStatsOverHTTP(t *testing.T) {
	t.Parallel()
	f := start(t, Options{})
	base := strings.TrimSuffix(f.p.Endpoint(), "bigquery/v2/")
	resp, err := send(t, http.MethodPost, base+"fidelity/inject", strings.NewReader(`{"Kind":"query","Count":1,"JobErrorReason":"backendError"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("inject: %v %v", err, resp)
	}
	resp.Body.Close()
	r, _ := f.runJob(t, func() (*bigquery.Job, error) { return f.c.Query("SELECT 1").Run(ctxT(t, time.Minute)) })
	if r != "backendError" {
		t.Fatalf("reason %q, want the injected backendError", r)
	}
	resp, err = send(t, http.MethodGet, base+"fidelity/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.FaultsFired != 1 || s.JobsFailed["backendError"] != 1 {
		t.Fatalf("stats %+v %v", s, err)
	}
}
