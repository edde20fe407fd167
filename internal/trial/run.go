package trial

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/civil"
	pubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/jackc/pgx/v5"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/localpubsub"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// The user's table and the names the README's steps use.
const (
	sourceTable = "public.trial_events"
	destTable   = "trial_events"
	dataset     = "pgbq" // the README's BQ_DATASET, which its bqquery line names
)

// Options set up a trial.
type Options struct {
	Root string // repository root (README.md, Makefile)
	// PGDSN is a database of the trial's own: it creates sourceTable there.
	PGDSN string
	// BQEndpoint and BQProject are what .devstack/env would set: the
	// BigQuery emulator behind the fidelity layer.
	BQEndpoint, BQProject string
	Dates, RowsPerDate    int
	// WorkDir is the user's shell's directory: the built binaries, the
	// script, its log, and .devstack if the block starts its own.
	WorkDir string
	// Timeout is how long the block may run before the trial says it did
	// not end by itself.
	Timeout time.Duration
}

// Report is what a trial saw.
type Report struct {
	Dates    []civil.Date // the history
	Wall     time.Duration
	Ended    bool // the block ended by itself, with exit status 0
	ExitErr  error
	Finished int // dates of the history sync_control records finished
	// Worked is each date's "date processed" outcomes and other
	// deliveries ("interrupted", "failed") from the loader's log.
	Worked map[civil.Date][]string
	Log    string // the block's output
}

// Deliveries is how many times the loader was handed a date of the history.
func (r *Report) Deliveries() int {
	n := 0
	for _, d := range r.Dates {
		n += len(r.Worked[d])
	}
	return n
}

// Problems lists every date not finished or not worked exactly once (one
// delivery, whose outcome was "finished"), at most max of them.
func (r *Report) Problems(max int) []string {
	var out []string
	for _, d := range r.Dates {
		if w := r.Worked[d]; len(w) != 1 || w[0] != "finished" {
			out = append(out, fmt.Sprintf("%s worked %d times: %v", d, len(w), w))
		}
	}
	if len(out) > max {
		out = append(out[:max], fmt.Sprintf("… and %d more", len(out)-max))
	}
	return out
}

// Line is the trial's summary.
func (r *Report) Line() string {
	return fmt.Sprintf("trial: dates=%d ended=%t minutes=%.1f finished=%d deliveries=%d deliveries_per_date=%.2f",
		len(r.Dates), r.Ended, r.Wall.Minutes(), r.Finished, r.Deliveries(), float64(r.Deliveries())/float64(len(r.Dates)))
}

// Run performs a trial. An error means it could not be set up or checked;
// how the block fared is in the report.
func Run(ctx context.Context, opt Options) (*Report, error) {
	readme, err := os.ReadFile(filepath.Join(opt.Root, "README.md"))
	if err != nil {
		return nil, err
	}
	block, err := Block(readme)
	if err != nil {
		return nil, err
	}
	rep := &Report{Worked: map[civil.Date][]string{}}
	if rep.Dates, err = seed(ctx, opt); err != nil {
		return nil, fmt.Errorf("seed %s: %w", sourceTable, err)
	}
	bin := filepath.Join(opt.WorkDir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./planner", "./loader", "./dev/bqquery")
	build.Dir = opt.Root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build: %w: %s", err, out)
	}
	// What dev/pstestd does for make stack-up, in this process.
	ps, err := localpubsub.New(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ps.Close()
	if err := createTopic(ctx, ps.Addr, opt.BQProject); err != nil {
		return nil, err
	}

	// The user's values: what step 2 of the README exports, and where the
	// block itself exports one of them, that line's value.
	user := map[string]string{"PG_DSN": opt.PGDSN, "SYNC_TABLE": sourceTable, "SYNC_ID_COLUMN": "id",
		"SYNC_TIMESTAMP_COLUMN": "created_at"}
	script := "# The README's own-table block, as a user runs it from the repository's root.\nset -ex\n" +
		`make() { command make -C "$PGBQ_TRIAL_ROOT" "$@"; }` + "\n" + Substitute(block, user)
	path := filepath.Join(opt.WorkDir, "own-table.sh")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		return nil, err
	}
	env := cleanEnv()
	for k, v := range user {
		env = append(env, k+"="+v)
	}
	env = append(env,
		// What `source .devstack/env` sets.
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "BQ_PROJECT="+opt.BQProject, "BQ_ENDPOINT="+opt.BQEndpoint,
		"PUBSUB_EMULATOR_HOST="+ps.Addr, "PUBSUB_TOPIC=dates", "PUBSUB_SUBSCRIPTION=dates-loader",
		// The rest of step 2 as the README writes it.
		"BQ_DATASET="+dataset, "SYNC_FINISH_GRACE=0s",
		// Should the block run make stack-up: its own directory and ports.
		"PGBQ_TRIAL_ROOT="+opt.Root, "DEVSTACK_DIR="+filepath.Join(opt.WorkDir, ".devstack"))
	for _, v := range []string{"DEVSTACK_BQ_PORT", "DEVSTACK_BQ_GRPC_PORT", "DEVSTACK_PUBSUB_PORT"} {
		p, err := freePort(ctx)
		if err != nil {
			return nil, err
		}
		env = append(env, fmt.Sprintf("%s=%d", v, p))
	}
	defer stackDown(context.WithoutCancel(ctx), opt, env)

	logPath := filepath.Join(opt.WorkDir, "own-table.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	rctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, "bash", path)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = opt.WorkDir, env, logf, logf
	// The block's processes are one group, ended together on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	rep.ExitErr = cmd.Run()
	rep.Wall = time.Since(start)
	rep.Ended = rep.ExitErr == nil
	if rctx.Err() != nil {
		rep.ExitErr = fmt.Errorf("still running after %s: %w", opt.Timeout, rctx.Err())
	}
	out, err := os.ReadFile(logPath)
	if err != nil {
		return nil, err
	}
	rep.Log = string(out)
	readWork(rep)
	if err := readFinished(ctx, opt, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// seed creates the user's table with opt.Dates dates of history ending
// the day before yesterday (closed whatever the grace and the hour).
func seed(ctx context.Context, opt Options) ([]civil.Date, error) {
	conn, err := pgx.Connect(ctx, opt.PGDSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	first := civil.DateOf(time.Now().UTC()).AddDays(-opt.Dates - 1)
	start := first.In(time.UTC)
	if _, err := conn.Exec(ctx, `CREATE TABLE public.trial_events (
  id bigint PRIMARY KEY, user_id bigint NOT NULL, action text NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX trial_events_created_at_id ON public.trial_events (created_at, id)`); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `INSERT INTO public.trial_events
SELECT g, g % 97, (ARRAY['view','click','buy'])[1 + g % 3], $1::timestamptz + (g - 1) * (interval '1 day' / $2::int)
FROM generate_series(1, $2::int * $3::int) g`, start, opt.RowsPerDate, opt.Dates); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "ANALYZE public.trial_events"); err != nil {
		return nil, err
	}
	dates := make([]civil.Date, opt.Dates)
	for i := range dates {
		dates[i] = first.AddDays(i)
	}
	return dates, nil
}

func createTopic(ctx context.Context, addr, project string) error {
	c, err := pubsub.NewClient(ctx, project, option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		return err
	}
	defer c.Close()
	topic := "projects/" + project + "/topics/dates"
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topic}); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	// As dev/pstestd creates it.
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{
		Name: "projects/" + project + "/subscriptions/dates-loader", Topic: topic, AckDeadlineSeconds: 60}); err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	return nil
}

// cleanEnv is this process's environment without the variables a user's
// fresh shell would not have (pgbq's own, and the test stack's).
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if slices.ContainsFunc([]string{"PG_", "SYNC_", "BQ_", "PUBSUB_", "LOADER_", "PLANNER_", "PGBQ_", "DEVSTACK_"},
			func(p string) bool { return strings.HasPrefix(k, p) }) || k == "LOG_LEVEL" || k == "PATH" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// stackDown stops what the block's make stack-up started, if anything.
func stackDown(ctx context.Context, opt Options, env []string) {
	if _, err := os.Stat(filepath.Join(opt.WorkDir, ".devstack")); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	down := exec.CommandContext(ctx, "bash", filepath.Join(opt.Root, "dev/devstack.sh"), "down")
	down.Env = env
	_ = down.Run()
}

// readWork counts the loader's deliveries per date from its log lines.
func readWork(rep *Report) {
	sc := bufio.NewScanner(strings.NewReader(rep.Log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Message  string `json:"message"`
			SyncDate string `json:"sync_date"`
			Outcome  string `json:"outcome"`
		}
		if !strings.HasPrefix(sc.Text(), "{") || json.Unmarshal(sc.Bytes(), &l) != nil || l.SyncDate == "" {
			continue
		}
		d, err := civil.ParseDate(l.SyncDate)
		if err != nil {
			continue
		}
		switch l.Message {
		case "date processed":
			rep.Worked[d] = append(rep.Worked[d], l.Outcome)
		case "date interrupted, will be redelivered":
			rep.Worked[d] = append(rep.Worked[d], "interrupted")
		case "date failed":
			rep.Worked[d] = append(rep.Worked[d], "failed")
		}
	}
}

// readFinished counts the history's dates sync_control records finished,
// in the BigQuery the block used (its own, if it ran make stack-up).
func readFinished(ctx context.Context, opt Options, rep *Report) error {
	endpoint, project := opt.BQEndpoint, opt.BQProject
	if env, err := os.ReadFile(filepath.Join(opt.WorkDir, ".devstack", "env")); err == nil {
		for _, l := range strings.Split(string(env), "\n") {
			if v, ok := strings.CutPrefix(l, "export BQ_ENDPOINT="); ok {
				endpoint = v
			}
			if v, ok := strings.CutPrefix(l, "export BQ_PROJECT="); ok {
				project = v
			}
		}
	}
	cfg := bq.Config{Project: project, Dataset: dataset, Location: "US", Endpoint: endpoint}.WithDefaults()
	client, err := bq.NewClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	latest, err := syncstate.New(client, project, dataset).Latest(ctx, destTable)
	if err != nil {
		return fmt.Errorf("read sync_control: %w", err)
	}
	for _, d := range rep.Dates {
		if latest[d].IsFinished {
			rep.Finished++
		}
	}
	return nil
}
