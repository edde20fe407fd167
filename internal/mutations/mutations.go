// Package mutations runs pgbq's real planner and loader binaries over a
// table whose rows change — inserted into past days, updated (recent and
// scattered rows), deleted, moved to another day — with loaders killed
// while they work, and then compares the source and BigQuery row by row,
// every column. `make mutations` runs it; a short run is part of `make
// test`.
package mutations

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/civil"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/jackc/pgx/v5"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgbq/pgbq/internal/localpubsub"
)

// Options size a run.
type Options struct {
	LoaderBin, PlannerBin string
	// DSN is an empty database the run may fill.
	DSN                            string
	BQEndpoint, BQProject, Dataset string
	WorkDir                        string // the processes' logs
	Rows, Days, ChunkSize          int
	Rounds, Loaders, SweepDays     int
	// PerRound: changes of each kind in a round.
	PerRound int
	Timeout  time.Duration
	Log      io.Writer
}

// Report is what a run found.
type Report struct {
	Rounds                     int
	Inserted, Updated, Deleted int
	Moved, Kills               int
	DaysReopened               int
	RowsReread                 int64
	SweepRuns                  int
	Stale, Missing, Extra, Dup int
}

// Changes counts the changes the rounds made.
func (r *Report) Changes() int { return r.Inserted + r.Updated + r.Deleted + r.Moved }

// Line is the run's summary line.
func (r *Report) Line() string {
	per := 0.0
	if r.Changes() > 0 {
		per = float64(r.RowsReread) / float64(r.Changes())
	}
	return fmt.Sprintf("mutations: rounds=%d updated=%d deleted=%d moved=%d days_reopened=%d rows_reread_per_change=%.1f sweep_runs=%d stale=%d missing=%d extra=%d duplicated=%d",
		r.Rounds, r.Updated, r.Deleted, r.Moved, r.DaysReopened, per, r.SweepRuns, r.Stale, r.Missing, r.Extra, r.Dup)
}

// OK reports whether the destination equals the source and every kind of
// change happened.
func (r *Report) OK() bool {
	return r.Stale == 0 && r.Missing == 0 && r.Extra == 0 && r.Dup == 0 &&
		r.Rounds > 0 && r.Updated > 0 && r.Deleted > 0 && r.Moved > 0 && r.DaysReopened > 0 && r.RowsReread > 0 &&
		r.SweepRuns > 0 && r.Kills > 0
}

type harness struct {
	opt    Options
	first  civil.Date // the history's first and last day
	last   civil.Date
	env    []string
	local  *localpubsub.Server
	client *pubsub.Client
	mu     sync.Mutex
	procs  []*os.Process // running loaders, by slot
	rep    Report
	// startedAt is when the rounds began (after the back-fill).
	startedAt time.Time
}

func (h *harness) logf(format string, args ...any) {
	if h.opt.Log != nil {
		fmt.Fprintf(h.opt.Log, "mutations: "+format+"\n", args...)
	}
}

// Run performs one run. An error means it could not be carried out; a
// destination that differs is in the report.
func Run(ctx context.Context, opt Options) (*Report, error) {
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	h := &harness{opt: opt, procs: make([]*os.Process, opt.Loaders)}
	h.last = civil.DateOf(time.Now().UTC()).AddDays(-2)
	h.first = h.last.AddDays(-(opt.Days - 1))
	if err := h.seed(ctx); err != nil {
		return nil, err
	}
	local, err := localpubsub.New(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer local.Close()
	h.local = local
	if err := h.topics(ctx); err != nil {
		return nil, err
	}
	defer h.client.Close()
	h.env = append(os.Environ(),
		"PG_DSN="+opt.DSN, "BQ_PROJECT="+opt.BQProject, "BQ_DATASET="+opt.Dataset, "BQ_ENDPOINT="+opt.BQEndpoint,
		"PUBSUB_EMULATOR_HOST="+local.Addr, "PUBSUB_PROJECT=mutations", "PUBSUB_TOPIC=dates", "PUBSUB_SUBSCRIPTION=dates-loader",
		"SYNC_TABLE=orders", "SYNC_UPDATED_AT_COLUMN=updated_at", fmt.Sprintf("SYNC_SWEEP_DAYS=%d", opt.SweepDays),
		// The rounds are seconds apart, not an hour: a grace of 2 s
		// stands for the 10 min of a deployment (no transaction here
		// lasts that long), so a change is not read by two runs.
		"SYNC_CHANGES_GRACE=2s",
		fmt.Sprintf("SYNC_CHUNK_SIZE=%d", opt.ChunkSize),
		// Today (no rows, never closed) is planned again only after an
		// hour, as with any schedule: runs here are seconds apart.
		"PLANNER_IN_FLIGHT=1h",
		"LOADER_CONCURRENCY=2", "LOG_LEVEL=info")
	if out, err := h.command(ctx, h.opt.PlannerBin, "migrate").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("planner migrate: %v: %s", err, out)
	}
	loadersCtx, stopLoaders := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range opt.Loaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.superviseLoader(loadersCtx, i)
		}()
	}
	err = h.rounds(ctx)
	stopLoaders()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if err := h.compare(ctx); err != nil {
		return nil, err
	}
	return &h.rep, nil
}

func (h *harness) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = h.env
	return cmd
}

// seed creates orders, keyed by a uuid, with an updated-at column a
// trigger keeps and its index, and opt.Rows rows over opt.Days days ending two days ago, each
// stamped as unchanged since its timestamp.
func (h *harness) seed(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, h.opt.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, fmt.Sprintf(`
CREATE TABLE orders (
  id uuid PRIMARY KEY, created_at timestamptz NOT NULL, customer integer NOT NULL, status text NOT NULL,
  amount numeric(12,2), note text, updated_at timestamptz DEFAULT now()
);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO orders
SELECT md5('order ' || g)::uuid, TIMESTAMPTZ '%[1]s 00:00:00+00' + (g - 1) * (interval '%[2]d days' / %[3]d),
       g %% 997, (ARRAY['new','paid','shipped'])[1 + g %% 3], (g %% 100000) / 100.0,
       CASE WHEN g %% 7 <> 0 THEN 'n' || g END, NULL
FROM generate_series(1, %[3]d) g;
UPDATE orders SET updated_at = created_at;
CREATE INDEX ON orders (created_at, id);
CREATE INDEX ON orders (updated_at);
ANALYZE orders;`, h.first, h.opt.Days, h.opt.Rows))
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	h.logf("seeded %d rows over %d days (%s..%s)", h.opt.Rows, h.opt.Days, h.first, h.last)
	return nil
}

func (h *harness) topics(ctx context.Context) error {
	c, err := pubsub.NewClient(ctx, "mutations", option.WithEndpoint(h.local.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		return err
	}
	h.client = c
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/mutations/topics/dates"}); err != nil {
		return err
	}
	_, err = c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/mutations/subscriptions/dates-loader", Topic: "projects/mutations/topics/dates", AckDeadlineSeconds: 10,
	})
	return err
}

// superviseLoader keeps one pulling loader running, restarting it after
// every kill, as Cloud Run would.
func (h *harness) superviseLoader(ctx context.Context, i int) {
	logf, err := os.Create(filepath.Join(h.opt.WorkDir, fmt.Sprintf("loader-%d.log", i)))
	if err != nil {
		h.logf("loader log: %v", err)
		return
	}
	defer logf.Close()
	for ctx.Err() == nil {
		// Not CommandContext: the harness ends loaders with its own
		// signals, not when ctx ends.
		cmd := exec.Command(h.opt.LoaderBin, "--pull") //nolint:noctx // see above
		cmd.Env = h.env
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			h.logf("start loader: %v", err)
			return
		}
		h.mu.Lock()
		h.procs[i] = cmd.Process
		h.mu.Unlock()
		exited := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				cmd.Process.Signal(syscall.SIGTERM)
			case <-exited:
			}
		}()
		cmd.Wait()
		close(exited)
		h.mu.Lock()
		h.procs[i] = nil
		h.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// kill sends kill -9 to the loader in slot i, if one runs.
func (h *harness) kill(i int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.procs[i%len(h.procs)]
	if p == nil || p.Signal(syscall.SIGKILL) != nil {
		return false
	}
	h.rep.Kills++
	return true
}
