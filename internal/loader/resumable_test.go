package loader

import (
	"fmt"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/testenv"
)

// Production's upload path (BQ_UPLOAD=resumable, the default on BigQuery)
// through the layer: a day whose file is larger than the client's 16 MiB
// chunk goes up in a resumable session, and its final chunk fails twice —
// once not received, once received with the answer lost, so the client
// sends it again to a completed upload. The day finishes with every row
// once.
func TestResumableUploadsSurviveAFailedFinalChunk(t *testing.T) {
	t.Parallel()
	r, proxy := newFidelityRig(t, bqfidelity.Options{})
	day := time.Date(2024, 9, 2, 0, 0, 0, 0, time.UTC)
	// 24,000 rows with 1,280 random hex characters each: about 30 MB of
	// text, more than one 16 MiB chunk even compressed.
	testenv.Exec(t, r.pool, fmt.Sprintf(`
INSERT INTO activity_logs (id, user_id, action, payload, created_at)
SELECT g, g %% 100, 'act', jsonb_build_object('blob', (SELECT string_agg(md5(random()::text || g || k), '') FROM generate_series(1, 40) k)),
       TIMESTAMPTZ '%s' + g * interval '3 seconds'
FROM generate_series(1, 24000) g`, day.Format(time.RFC3339)))
	s := r.open(100000)
	cfg := r.bq.Config()
	cfg.Upload = bq.UploadResumable
	wh, err := bq.NewWarehouse(r.bq.Client, cfg, "activity_logs", r.src.Table())
	if err != nil {
		t.Fatal(err)
	}
	s.Warehouse, r.wh = wh, wh
	proxy.Inject(bqfidelity.Fault{Kind: "upload.final", Table: "activity_logs", Count: 1})
	proxy.Inject(bqfidelity.Fault{Kind: "upload.final", Table: "activity_logs", Count: 1, AfterWork: true})
	if out := r.syncAll(s, day); out != Finished {
		t.Fatalf("outcome %v, want finished", out)
	}
	if n := r.check(day); n != 24000 {
		t.Fatalf("source rows %d", n)
	}
	st := proxy.Stats()
	if st.FaultsFired != 2 || st.UploadsCompletedAgain < 1 {
		t.Fatalf("faults fired %d, re-sent final chunks answered %d: the resumable path was not taken", st.FaultsFired, st.UploadsCompletedAgain)
	}
}
