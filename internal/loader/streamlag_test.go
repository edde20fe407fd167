package loader

import (
	"context"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// `planner resync` re-opens a date with a streamed row, which BigQuery
// shows to queries "within a few seconds", not at once. A loader that gets
// the resync's message and reads the date's state before then sees it
// still finished and acks the message without work; the date is left
// re-opened and planned, which the planner leaves alone as queued for
// PLANNER_QUEUED (24 h by default). So the resync publishes only once its
// re-opening can be read. (Found by make chaos's streamed-state nemesis.)
func TestResyncIsSeenByTheLoaderItWakes(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	day := time.Date(2024, 11, 14, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, day, 1, 100, false)
	s := r.open(1000)
	if got := r.syncAll(s, day); got != Finished {
		t.Fatalf("first sync: outcome %v, want finished", got)
	}

	// The operator's planner reaches BigQuery through a layer whose
	// streamed rows reach queries 10 s after they were accepted.
	emu := os.Getenv(testenv.EnvBQEmulator)
	if emu == "" {
		t.Fatalf("%s is not set: run the tests with dev/test.sh", testenv.EnvBQEmulator)
	}
	lag, err := bqfidelity.Start(emu, bqfidelity.Options{StreamingVisibilityDelay: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lag.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := r.bq.Config()
	cfg.Endpoint = lag.Endpoint()
	client, err := bq.NewClient(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	p := &planner.Planner{State: syncstate.New(client, r.bq.Project, r.bq.Dataset), Pub: &published{}, Table: s.Table, Staging: s.Warehouse}
	d := civil.DateOf(day)
	if got, err := p.Resync(ctx, d, d, "rows fixed at the source", "operator"); err != nil || len(got) != 1 || !got[0].Done {
		t.Fatalf("resync %s = %+v, %v", d, got, err)
	}

	// The loader gets the message at once.
	if got := r.syncAll(s, day); got != Finished {
		t.Fatalf("the resync's message: outcome %v, want the date synced again (finished)", got)
	}
	if e := r.entry(day); !e.IsFinished || e.Epoch < 1 {
		t.Fatalf("after the resync sync_control = %+v, want finished in the re-opening's epoch", e)
	}
}
