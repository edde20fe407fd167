// Package chaos runs pgbq's real binaries against the local stack while
// injecting faults — loaders killed at the moments that matter, BigQuery
// errors and timeouts, PostgreSQL restarts, duplicate deliveries, two
// planners at once, rows arriving late — and then counts, day by day,
// whether any row was lost or duplicated. `make chaos` runs it at full
// size; a short run is part of `make test`.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/jackc/pgx/v5"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/localpubsub"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Options size a run.
type Options struct {
	Root       string // repository root (dev/pg.sh lives there)
	LoaderBin  string
	PlannerBin string
	BQEndpoint string // unused: the run starts a fidelity layer of its own in front of EmulatorEndpoint
	// EmulatorEndpoint is the BigQuery emulator's own endpoint; the run
	// puts its own fidelity layer in front, to hold jobs and delay
	// streamed rows (nemesis.go).
	EmulatorEndpoint string
	BQProject        string
	Dataset          string
	WorkDir          string
	Rows             int
	Dates            int
	ChunkSize        int
	Loaders          int // loader processes running at once
	KillsPerKind     int // kill -9s wanted at each of the four moments
	PGRestarts       int
	FaultRate        float64 // share of BigQuery requests that fail
	Timeout          time.Duration
	Log              io.Writer
	// HoldsPerKind is the least sample of jobs of each kind (publish,
	// load) held PENDING; HoldMax bounds a hold (random in [0, HoldMax)).
	HoldsPerKind int
	HoldMax      time.Duration
}

// Report is what a run found.
type Report struct {
	Faults                   map[string]int
	Dates                    int
	SourceRows, BigQueryRows int64
	Lost, Duplicated         int64
	Unfinished               []string
	DeadLettered             int
	Nemesis                  Nemesis
}

// TotalFaults sums the faults injected.
func (r *Report) TotalFaults() int {
	n := 0
	for _, v := range r.Faults {
		n += v
	}
	return n
}

type harness struct {
	opt        Options
	mu         sync.Mutex
	faults     map[string]int
	seen       map[string]int // occurrences of each fault's moment, for the schedule
	pgDir      string
	pgBusy     sync.Mutex
	dsn        string
	env        []string
	local      *localpubsub.Server // pstest behind a front that keeps unacked messages
	ps         *pstest.Server      // local.Fake
	client     *pubsub.Client
	proxies    []*proxy
	nem        nemeses
	bq         *bigquery.Client // through the run's fidelity layer
	bqEndpoint string           // the run's fidelity layer
}

func (h *harness) logf(format string, args ...any) {
	if h.opt.Log != nil {
		fmt.Fprintf(h.opt.Log, "chaos: "+format+"\n", args...)
	}
}

func (h *harness) count(kind string) {
	h.mu.Lock()
	h.faults[kind]++
	h.mu.Unlock()
}

func (h *harness) injected(kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.faults[kind]
}

// due counts one occurrence of the moment of kind and says whether this
// one gets the fault: every nth, so that each kind happens on a schedule
// spread over the run, never by chance. It returns which due occurrence
// this is (1, 2, ...).
func (h *harness) due(kind string, n int) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[kind]++
	if h.seen[kind]%n != 0 {
		return 0, false
	}
	return h.seen[kind] / n, true
}

// want says whether to inject kind now: while its quota lasts, at every
// third occurrence of its moment (every one for the rarer moments).
func (h *harness) want(kind string) bool {
	if h.injected(kind) >= h.opt.KillsPerKind {
		return false
	}
	n := 3
	if kind == KillPublish || kind == KillFinish {
		n = 1
	}
	_, ok := h.due(kind, n)
	return ok
}

func (h *harness) pgRestartWanted() bool {
	if h.injected(PGRestart) >= h.opt.PGRestarts {
		return false
	}
	_, ok := h.due(PGRestart, 10)
	return ok
}

// transientKinds are the BigQuery failures given in turn.
var transientKinds = []string{BQ503, BQ429, BQ500, BQTimeout}

// transientFault says which transient failure, if any, this request gets:
// one request in 1/FaultRate, the kinds in turn, so every kind has
// happened once 4/FaultRate requests have gone by.
func (h *harness) transientFault() (string, bool) {
	if h.opt.FaultRate <= 0 {
		return "", false
	}
	k, ok := h.due("transient", max(1, int(math.Round(1/h.opt.FaultRate))))
	if !ok {
		return "", false
	}
	return transientKinds[(k-1)%len(transientKinds)], true
}

// restartPG restarts the cluster (fast: sessions are cut mid-query).
func (h *harness) restartPG(ctx context.Context) bool {
	if !h.pgBusy.TryLock() {
		return false
	}
	defer h.pgBusy.Unlock()
	if err := exec.CommandContext(ctx, filepath.Join(h.opt.Root, "dev/pg.sh"), "restart", h.pgDir).Run(); err != nil {
		h.logf("PostgreSQL restart failed: %v", err)
		return false
	}
	h.count(PGRestart)
	return true
}

func freePort(ctx context.Context) (int, error) {
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startPG starts the cluster on a free port. PostgreSQL must bind the
// port itself, so it cannot be handed a held listener: a port taken by
// someone else between the choice and the start is met by choosing again.
func (h *harness) startPG(ctx context.Context) (port int, err error) {
	var out []byte
	for range 3 {
		if port, err = freePort(ctx); err != nil {
			return 0, err
		}
		if out, err = exec.CommandContext(ctx, filepath.Join(h.opt.Root, "dev/pg.sh"), "start", h.pgDir, fmt.Sprint(port)).CombinedOutput(); err == nil {
			return port, nil
		}
		exec.CommandContext(context.WithoutCancel(ctx), filepath.Join(h.opt.Root, "dev/pg.sh"), "stop", h.pgDir).Run()
	}
	return 0, fmt.Errorf("start PostgreSQL: %v: %s", err, out)
}

// Run performs one chaos run and reports what it found. An error means
// the run could not be carried out; lost or duplicated rows are in the
// report, not an error.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.EmulatorEndpoint == "" {
		return nil, errors.New("chaos: the BigQuery emulator's endpoint (EmulatorEndpoint) is required")
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	h := &harness{opt: opt, faults: map[string]int{}, seen: map[string]int{}, pgDir: filepath.Join(opt.WorkDir, "pg"),
		nem: nemeses{requesters: map[string]requester{}, checked: map[civil.Date]time.Time{}, n: Nemesis{HeldByKind: map[string]int{}}}}
	// The run's own fidelity layer: every cancel lost (a cancel is a
	// request, not a promise), streamed rows visible 1-4 s after they
	// were accepted ("within a few seconds"), jobs held by nemesis.go.
	lopt := bqfidelity.Options{JobLatency: 100 * time.Millisecond, CancelLoses: 1,
		StreamingVisibilityDelay: time.Second, StreamingVisibilityJitter: 3 * time.Second, Logf: h.logf}
	layer, err := bqfidelity.Start(opt.EmulatorEndpoint, lopt) //nolint:contextcheck // the layer lives until Close
	if err != nil {
		return nil, err
	}
	defer layer.Close() //nolint:contextcheck // see above
	h.nem.layer, h.bqEndpoint = layer, layer.Endpoint()
	if h.bq, err = bq.NewClient(ctx, bq.Config{Project: opt.BQProject, Endpoint: h.bqEndpoint}); err != nil {
		return nil, err
	}
	defer h.bq.Close()
	port, err := h.startPG(ctx)
	if err != nil {
		return nil, err
	}
	defer exec.CommandContext(context.WithoutCancel(ctx), filepath.Join(opt.Root, "dev/pg.sh"), "stop", h.pgDir).Run()
	h.dsn = fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port)
	first, err := h.seed(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.startPubSub(ctx); err != nil {
		return nil, err
	}
	defer h.local.Close()
	defer h.client.Close()
	h.env = append(os.Environ(),
		"PG_DSN="+h.dsn, "BQ_PROJECT="+opt.BQProject, "BQ_DATASET="+opt.Dataset,
		"PUBSUB_EMULATOR_HOST="+h.local.Addr, "PUBSUB_PROJECT=chaos", "PUBSUB_TOPIC=dates", "PUBSUB_SUBSCRIPTION=dates-loader",
		"SYNC_TABLE=events", fmt.Sprintf("SYNC_CHUNK_SIZE=%d", opt.ChunkSize), "SYNC_START_DATE="+first.String(),
		"PLANNER_IN_FLIGHT=5s", fmt.Sprintf("PLANNER_RECHECK_DAYS=%d", opt.Dates+5),
		"LOADER_BUDGET=10s", "LOADER_CONCURRENCY=2", "LOG_LEVEL=warn")

	// What Cloud Build does once per deploy, before any loader starts.
	migrate := exec.CommandContext(ctx, opt.PlannerBin, "migrate")
	migrate.Env = append(append([]string{}, h.env...), "BQ_ENDPOINT="+h.bqEndpoint)
	if out, err := migrate.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("planner migrate: %v: %s", err, out)
	}

	loadersCtx, stopLoaders := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < opt.Loaders; i++ {
		p := newProxy(h, h.bqEndpoint)
		defer p.Close()
		h.proxies = append(h.proxies, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.superviseLoader(loadersCtx, i, p)
		}()
	}
	// The nemeses that run beside the rounds.
	nemCtx, stopNemeses := context.WithCancel(ctx)
	var holdWG, nemWG sync.WaitGroup
	for _, k := range holdKinds {
		holdWG.Add(1)
		go h.holdJobs(nemCtx, ctx, &holdWG, k)
	}
	nemWG.Add(2)
	go func() { defer nemWG.Done(); h.restartWithLocks(nemCtx) }()
	go func() {
		defer nemWG.Done()
		h.watchFinished(nemCtx, syncstate.New(h.bq, opt.BQProject, opt.Dataset))
	}()
	err = h.rounds(ctx, first)
	stopNemeses()
	nemWG.Wait()
	holdWG.Wait() // every held job let go and ended
	stopLoaders()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return h.report(ctx, first)
}

// seed creates events: a few columns of each common type, opt.Rows rows
// over opt.Dates closed days ending three days ago. Ids are even and
// rise with time, leaving odd ids for rows that commit late.
func (h *harness) seed(ctx context.Context) (civil.Date, error) {
	conn, err := pgx.Connect(ctx, h.dsn)
	if err != nil {
		return civil.Date{}, err
	}
	defer conn.Close(ctx)
	last := civil.DateOf(time.Now().UTC()).AddDays(-3)
	first := last.AddDays(-(h.opt.Dates - 1))
	_, err = conn.Exec(ctx, fmt.Sprintf(`
CREATE TABLE events (
  id bigint PRIMARY KEY, created_at timestamptz NOT NULL, user_id integer, kind text, note varchar(100),
  amount numeric(12,2), score double precision, ok boolean, payload jsonb, day date, uid uuid, ip inet
);
INSERT INTO events
SELECT 2 * g, TIMESTAMPTZ '%[1]s 00:00:00+00' + (g - 1) * (interval '%[2]d days' / %[3]d),
       g %% 1000, (ARRAY['view','click','buy'])[1 + g %% 3], CASE WHEN g %% 5 <> 0 THEN 'n' || g END,
       (g %% 100000) / 100.0, g / 7.0, g %% 2 = 0, jsonb_build_object('g', g, 'tags', jsonb_build_array(g %% 3)),
       DATE '2020-01-01' + g %% 900, md5(g::text)::uuid, ('10.1.' || (g %% 250) || '.' || (g %% 200))::inet
FROM generate_series(1, %[3]d) g;
CREATE INDEX ON events (created_at, id);
ANALYZE events;`, first, h.opt.Dates, h.opt.Rows))
	if err != nil {
		return civil.Date{}, fmt.Errorf("seed: %w", err)
	}
	h.logf("seeded %d rows over %d dates (%s..%s)", h.opt.Rows, h.opt.Dates, first, last)
	return first, nil
}

func (h *harness) startPubSub(ctx context.Context) error {
	local, err := localpubsub.New(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	h.local, h.ps = local, local.Fake
	c, err := pubsub.NewClient(ctx, "chaos", option.WithEndpoint(local.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		return err
	}
	h.client = c
	for _, t := range []string{"dates", "dates-dlq"} {
		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/chaos/topics/" + t}); err != nil {
			return err
		}
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/chaos/subscriptions/dates-dlq", Topic: "projects/chaos/topics/dates-dlq", AckDeadlineSeconds: 10,
	}); err != nil {
		return err
	}
	_, err = c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/chaos/subscriptions/dates-loader", Topic: "projects/chaos/topics/dates", AckDeadlineSeconds: 10,
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: "projects/chaos/topics/dates-dlq", MaxDeliveryAttempts: 100},
	})
	return err
}

// superviseLoader keeps one loader process running, as Cloud Run would,
// restarting it after every kill.
func (h *harness) superviseLoader(ctx context.Context, i int, p *proxy) {
	logf, err := os.Create(filepath.Join(h.opt.WorkDir, fmt.Sprintf("loader-%d.log", i)))
	if err != nil {
		h.logf("loader log: %v", err)
		return
	}
	defer logf.Close()
	for ctx.Err() == nil {
		// Not CommandContext: the harness ends loaders with its own
		// signals (kill -9, SIGTERM), not when ctx ends.
		cmd := exec.Command(h.opt.LoaderBin, "--pull") //nolint:noctx // see above
		cmd.Env = append(append([]string{}, h.env...), "BQ_ENDPOINT="+p.Endpoint())
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			h.logf("start loader: %v", err)
			return
		}
		p.setProc(cmd.Process)
		exited := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				p.signal(syscall.SIGTERM)
			case <-exited:
			}
		}()
		cmd.Wait()
		close(exited)
		p.setProc(nil)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sigtermOne sends SIGTERM to the first running loader, as a Cloud Run
// scale-in does; its supervisor starts it again.
func (h *harness) sigtermOne() {
	for _, p := range h.proxies {
		if p.signal(syscall.SIGTERM) {
			h.count(SigtermLoader)
			return
		}
	}
}

var errNotDone = errors.New("not every date finished")

// lateDue says whether this checkpoint gets a row committed late below
// it: every fifth.
func (h *harness) lateDue() bool {
	_, ok := h.due(LateBelowCkpt, 5)
	return ok
}
