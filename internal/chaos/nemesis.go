package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/civil"
	"cloud.google.com/go/pubsub/v2"
	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/message"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// BigQuery's own nemeses, beside the faults of proxy.go: jobs that wait
// PENDING while their requester dies and run after it (their cancels
// lost), a column added to the source mid-run, streamed state rows
// visible only seconds after they were accepted, a finished date
// delivered again while a stale job of it is pending, PostgreSQL
// restarted while write tokens and claims are held, and an operator's
// resync, pause and resume. The run's own fidelity layer
// (internal/bqfidelity) holds the jobs and delays the rows; the harness
// picks which, kills, and counts.

// Nemesis is what the nemeses did, for the chaos-nemesis line.
type Nemesis struct {
	HeldJobs         int            // jobs held PENDING, all kinds
	HeldByKind       map[string]int // by holdKinds
	StaleJobs        int            // held jobs that ran after their requester was gone
	Fenced           int            // stale publish jobs the fence kept from landing (loader logs)
	StaleRan         int            // stale publish jobs the fence saw end by themselves (loader logs)
	SchemaChanges    int
	Resyncs          int
	Pauses           int
	HiddenStateReads int // state reads sent while streamed state rows were still invisible
	FinishedChecks   int
	FinishedWrong    int
	LateRows         int // rows the run committed into dates during the run
	LateMissing      int // of those, not in BigQuery at the end
}

// Line is the chaos-nemesis line.
func (n *Nemesis) Line() string {
	return fmt.Sprintf("chaos-nemesis: held_jobs=%d stale_jobs=%d fenced=%d schema_changes=%d resyncs=%d pauses=%d hidden_state_reads=%d finished_checks=%d finished_wrong=%d",
		n.HeldJobs, n.StaleJobs, n.Fenced, n.SchemaChanges, n.Resyncs, n.Pauses, n.HiddenStateReads, n.FinishedChecks, n.FinishedWrong)
}

// Complete says whether every nemesis happened (each count above zero
// except Fenced, which is reported) and nothing finished wrong.
func (n *Nemesis) Complete(perKind int) []string {
	var missing []string
	for _, k := range holdKinds {
		if n.HeldByKind[k] < perKind {
			missing = append(missing, fmt.Sprintf("held %s jobs %d < %d", k, n.HeldByKind[k], perKind))
		}
	}
	for name, v := range map[string]int{"stale_jobs": n.StaleJobs, "schema_changes": n.SchemaChanges, "resyncs": n.Resyncs,
		"pauses": n.Pauses, "hidden_state_reads": n.HiddenStateReads, "finished_checks": n.FinishedChecks} {
		if v == 0 {
			missing = append(missing, name+"=0")
		}
	}
	if n.FinishedWrong != 0 {
		missing = append(missing, fmt.Sprintf("finished_wrong=%d", n.FinishedWrong))
	}
	if n.LateMissing != 0 {
		missing = append(missing, fmt.Sprintf("%d of %d late rows not in BigQuery", n.LateMissing, n.LateRows))
	}
	return missing
}

// Job kinds held: the publish (a MERGE carrying the fence's label) and
// loads (of staging, or a day published by load).
const (
	holdPublish = "publish"
	holdLoad    = "load"
)

var holdKinds = []string{holdPublish, holdLoad}

// holdShare is the share of a kind's jobs held while its sample is short:
// a sample, never all of them.
// Each held job costs its date an attempt (the requester dies) and the
// next publish of its days a wait (the fence waits the job out), so the
// shares are small enough for the run to get through.
var holdShare = map[string]float64{holdPublish: 0.35, holdLoad: 0.12}

func holdKind(j bqfidelity.HeldJob) string {
	switch {
	case j.Kind == "query" && j.Labels["pgbq_publish"] != "":
		return holdPublish
	case j.Kind == "load":
		return holdLoad
	}
	return ""
}

// requester is the loader process that inserted a job: the proxy it
// talks through and which of that proxy's processes it was.
type requester struct {
	p   *proxy
	inc int
}

type nemeses struct {
	mu         sync.Mutex
	n          Nemesis
	requesters map[string]requester // job id -> who inserted it
	latest     map[civil.Date]syncstate.Entry
	checked    map[civil.Date]time.Time // the finish of each date the invariant checked (watchFinished's own)
	rows       []chaosRow               // rows the run committed during the run
	schemaAt   int                      // the round in which the column was added (0: not yet)
	layer      *bqfidelity.Proxy
}

// jobIDRE finds the job id in a jobs.insert body (JSON, or the JSON part
// of a multipart upload).
var jobIDRE = regexp.MustCompile(`"jobId"\s*:\s*"([^"]+)"`)

// noteRequester records which loader inserts the job of body, before the
// job exists.
func (h *harness) noteRequester(p *proxy, body []byte) {
	m := jobIDRE.FindSubmatch(body)
	if m == nil {
		return
	}
	p.mu.Lock()
	r := requester{p: p, inc: p.inc}
	p.mu.Unlock()
	h.nem.mu.Lock()
	h.nem.requesters[string(m[1])] = r
	h.nem.mu.Unlock()
}

func (h *harness) requesterOf(id string) (requester, bool) {
	h.nem.mu.Lock()
	defer h.nem.mu.Unlock()
	r, ok := h.nem.requesters[id]
	return r, ok
}

func (h *harness) nemAdd(fn func(n *Nemesis)) {
	h.nem.mu.Lock()
	fn(&h.nem.n)
	h.nem.mu.Unlock()
}

func (h *harness) heldOf(kind string) int {
	h.nem.mu.Lock()
	defer h.nem.mu.Unlock()
	return h.nem.n.HeldByKind[kind]
}

// holdJobs keeps a sample of kind's jobs PENDING, one hold armed at a
// time, until the sample is a quarter bigger than required (and, for
// publishes, a finished date was delivered again during one).
// Holds taken before armCtx ends run their course under runCtx.
func (h *harness) holdJobs(armCtx, runCtx context.Context, wg *sync.WaitGroup, kind string) {
	defer wg.Done()
	for armCtx.Err() == nil {
		if h.heldOf(kind) >= h.opt.HoldsPerKind+h.opt.HoldsPerKind/4 && (kind != holdPublish || h.injected(RedeliverStale) > 0) {
			select { // the sample is big enough; nothing more to hold
			case <-armCtx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		var taken atomic.Bool
		var labels sync.Map
		held, release := h.nem.layer.Hold(func(j bqfidelity.HeldJob) bool {
			if holdKind(j) != kind || rand.Float64() >= holdShare[kind] {
				return false
			}
			if _, ok := h.requesterOf(j.ID); !ok {
				return false // not a loader's job
			}
			if !taken.CompareAndSwap(false, true) {
				return false
			}
			labels.Store(j.ID, j.Labels)
			return true
		})
		select {
		case id := <-held:
			l, _ := labels.Load(id)
			wg.Add(1)
			go h.holdOne(runCtx, wg, kind, id, l.(map[string]string), release)
		case <-armCtx.Done():
			release()
			// A job picked as the arming ended is let go at once.
			select {
			case id := <-held:
				h.logf("job %s let go as the run ended", id)
			default:
			}
		}
	}
}

// holdOne kills the requester of a held job, delivers a finished date of
// a held publish again, waits a random while and lets the job run.
func (h *harness) holdOne(ctx context.Context, wg *sync.WaitGroup, kind, id string, labels map[string]string, release func()) {
	defer wg.Done()
	defer release()
	h.nemAdd(func(n *Nemesis) { n.HeldJobs++; n.HeldByKind[kind]++ })
	req, _ := h.requesterOf(id)
	h.logf("holding %s job %s PENDING, its requester killed: %v", kind, id, req.p.killIf(req.inc))
	if kind == holdPublish {
		h.redeliverFinished(ctx, labels)
	}
	select {
	case <-time.After(rand.N(h.opt.HoldMax)):
	case <-ctx.Done():
		return
	}
	gone := !req.p.running(req.inc)
	release()
	if gone && h.jobRan(ctx, id) {
		h.nemAdd(func(n *Nemesis) { n.StaleJobs++ })
	}
}

// jobRan waits for the job to end and says whether it ran (was not
// stopped by a cancel before it took effect).
func (h *harness) jobRan(ctx context.Context, id string) bool {
	for ctx.Err() == nil {
		j, err := h.bq.JobFromID(ctx, id)
		if err == nil {
			st, err := j.Status(ctx)
			if err == nil && st.Done() {
				return st.Err() == nil || !strings.Contains(st.Err().Error(), "stopped")
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return false
}

// redeliverFinished publishes the message of a finished date again while
// a stale publish of it is pending: a day the job writes if one is
// finished, else any finished date.
func (h *harness) redeliverFinished(ctx context.Context, labels map[string]string) {
	h.nem.mu.Lock()
	var pick, all []civil.Date
	for d, e := range h.nem.latest {
		if !e.IsFinished {
			continue
		}
		all = append(all, d)
		if _, ok := labels["pgbq_d_"+d.In(time.UTC).Format("20060102")]; ok {
			pick = append(pick, d)
		}
	}
	h.nem.mu.Unlock()
	if len(pick) == 0 {
		pick = all
	}
	if len(pick) == 0 {
		return
	}
	d := pick[rand.N(len(pick))]
	r := h.client.Publisher("dates").Publish(ctx, &pubsub.Message{Data: message.New("events", d.In(time.UTC)).Encode()})
	if _, err := r.Get(ctx); err != nil {
		h.logf("deliver %s again: %v", d, err)
		return
	}
	h.count(RedeliverStale)
}

// restartWithLocks restarts PostgreSQL when a write token (a one-key
// advisory lock) and a date's claim or announcement (a two-key one) are
// held, until the quota is met.
func (h *harness) restartWithLocks(ctx context.Context) {
	for ctx.Err() == nil && h.injected(PGRestartLocks) < 1 {
		if h.locksHeld(ctx) {
			if h.restartPG(ctx) {
				h.count(PGRestartLocks)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (h *harness) locksHeld(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, h.dsn)
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	var tokens, claims int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE objsubid = 1), count(*) FILTER (WHERE objsubid = 2)
FROM pg_locks WHERE locktype = 'advisory' AND granted`).Scan(&tokens, &claims)
	return err == nil && tokens > 0 && claims > 0
}

// addColumn adds a column to the source and fills it in new rows spread
// over every date, finished or not.
func (h *harness) addColumn(ctx context.Context, first civil.Date, round int) error {
	if err := h.pgExec(ctx, SchemaChange, `ALTER TABLE events ADD COLUMN region text`); err != nil {
		return err
	}
	err := h.pgInsert(ctx, SchemaChange, `INSERT INTO events (id, created_at, kind, note, region)
SELECT (SELECT max(id) FROM events) + 2 * g, $1::timestamptz + (g % $2) * interval '1 day' + g * interval '7 minutes',
       'late', 'with the new column', 'region-' || g
FROM generate_series(1, $3::int) g`, first.In(time.UTC), h.opt.Dates, 3*h.opt.Dates)
	if err != nil {
		return err
	}
	h.nemAdd(func(n *Nemesis) { n.SchemaChanges++ })
	h.nem.mu.Lock()
	h.nem.schemaAt = round
	h.nem.mu.Unlock()
	h.logf("added column region, filled in %d new rows", 3*h.opt.Dates)
	return nil
}

// operator runs `planner resync` of a finished date (the first if none
// is), then `planner pause`, a planner run while paused, and `resume`.
func (h *harness) operator(ctx context.Context, first civil.Date) error {
	d := first
	h.nem.mu.Lock()
	for day, e := range h.nem.latest {
		if e.IsFinished {
			d = day
			break
		}
	}
	h.nem.mu.Unlock()
	if err := h.planner(ctx, "resync", "--table", "events", "--from", d.String(), "--reason", "chaos"); err != nil {
		return err
	}
	h.nemAdd(func(n *Nemesis) { n.Resyncs++ })
	if err := h.planner(ctx, "pause", "--table", "events", "--reason", "chaos"); err != nil {
		return err
	}
	h.nemAdd(func(n *Nemesis) { n.Pauses++ })
	if err := h.planner(ctx); err != nil {
		return err
	}
	return h.planner(ctx, "resume", "--table", "events", "--reason", "chaos")
}

func (h *harness) planner(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, h.opt.PlannerBin, args...)
	cmd.Env = append(append([]string{}, h.env...), "BQ_ENDPOINT="+h.bqEndpoint)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("planner %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (h *harness) columnAdded() bool {
	h.nem.mu.Lock()
	defer h.nem.mu.Unlock()
	return h.nem.schemaAt > 0
}

func anyFinished(latest map[civil.Date]syncstate.Entry) bool {
	for _, e := range latest {
		if e.IsFinished {
			return true
		}
	}
	return false
}

// roundNemeses are the operator's commands, issued in the second round
// (while the first round's messages may still be in flight).
func (h *harness) roundNemeses(ctx context.Context, first civil.Date, round int) error {
	if round != 2 {
		return nil
	}
	return h.operator(ctx, first)
}

// resyncOne starts a finished date over with `planner resync`.
func (h *harness) resyncOne(ctx context.Context, latest map[civil.Date]syncstate.Entry) error {
	var done []civil.Date
	for d, e := range latest {
		if e.IsFinished {
			done = append(done, d)
		}
	}
	if len(done) == 0 {
		return nil
	}
	d := done[rand.N(len(done))]
	if err := h.planner(ctx, "resync", "--table", "events", "--from", d.String(), "--reason", "chaos: more publishes"); err != nil {
		return err
	}
	h.nemAdd(func(n *Nemesis) { n.Resyncs++ })
	return nil
}

// owed lists what the run still waits for.
func (h *harness) owed() []string {
	owed := h.nemesesOwed()
	for _, k := range []string{KillExtract, KillAfterLoad, KillPublish, KillFinish} {
		if h.injected(k) < h.opt.KillsPerKind {
			owed = append(owed, k)
		}
	}
	if h.injected(PGRestart) < h.opt.PGRestarts {
		owed = append(owed, PGRestart)
	}
	return owed
}

// nemesesOwed lists the nemeses that have not happened yet.
func (h *harness) nemesesOwed() []string {
	h.nem.mu.Lock()
	n := h.nem.n
	n.HeldByKind = map[string]int{}
	for k, v := range h.nem.n.HeldByKind {
		n.HeldByKind[k] = v
	}
	h.nem.mu.Unlock()
	// Results, not nemeses: counted to the end, and a wrong finish is
	// reported, not waited out.
	n.FinishedChecks, n.FinishedWrong, n.LateMissing = max(n.FinishedChecks, 1), 0, 0
	owed := n.Complete(h.opt.HoldsPerKind)
	for _, k := range []string{KillRequester, RedeliverStale, PGRestartLocks, SchemaChange} {
		if h.injected(k) == 0 {
			owed = append(owed, k)
		}
	}
	return owed
}

// finalChecks checks, when the run is over and every streamed state row
// has become visible, every finished date whose finish was not checked.
func (h *harness) finalChecks(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for h.nem.layer.HiddenRows(h.opt.BQProject, h.opt.Dataset, syncstate.LogTable) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	latest, err := syncstate.New(h.bq, h.opt.BQProject, h.opt.Dataset).Latest(ctx, "events")
	if err != nil {
		return err
	}
	for _, d := range sortedDates(latest) {
		if !latest[d].IsFinished || h.nem.checked[d].Equal(latest[d].SyncedAt) {
			continue // checked while the run went on (watchFinished has ended)
		}
		if err := h.checkFinished(ctx, d, latest[d]); err != nil {
			return fmt.Errorf("check %s: %w", d, err)
		}
	}
	return nil
}
