// Package scale is `make scale`: a back-fill of many small dates worked by
// many loaders on the local stack (real PostgreSQL, the BigQuery emulator
// behind the fidelity layer with job latency), dispatched either the way
// back-fills are deployed (pull: StreamingPull with flow control and lease
// extension) or the old way (push to Cloud Run, one request per instance),
// and then checked date by date. It reports one line:
//
//	scale: dates=D loaders=M job_latency_s=L wall_s=W ideal_s=I efficiency=E dead_lettered=0 failed=0 lost=0 duplicated=0 publish_conflicts=C rate_limited=R deliveries_per_date=P
//
// ideal_s is dates × the time one date takes when synced alone (measured
// first, same setup) ÷ loaders: the wall time of perfect packing.
package scale

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/jackc/pgx/v5"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/loader"
	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/planner"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Dispatch modes.
const (
	Pull = "pull" // StreamingPull workers with flow control (the deployed back-fill design)
	Push = "push" // push to a Cloud Run stand-in (the old design)
)

// Table is the source and destination table a run creates.
const Table = "events"

// Options size a run.
type Options struct {
	Mode    string
	Dates   int
	Loaders int
	// Outstanding is how many dates one pulling loader works at once
	// (LOADER_CONCURRENCY, flow control); pull only.
	Outstanding int
	RowsPerDate int
	ChunkSize   int
	// PGDSN is a database of the run's own: it creates Table there.
	PGDSN string
	// BQ is a dataset behind Proxy, with sync_control migrated.
	BQ    bq.Config
	Proxy *bqfidelity.Proxy
	// JobLatency is the proxy's job latency, for the report.
	JobLatency time.Duration
	// TimeScale multiplies every push-side time (Cloud Run's 10 s wait,
	// the 600 s ack deadline, the 10–600 s retry backoff, the loader's
	// 480 s budget); push only.
	TimeScale float64
	// MaxDatesPerRun is the planner's cap per run (PLANNER_MAX_DATES).
	MaxDatesPerRun int
	Timeout        time.Duration
	Log            io.Writer
	// LoaderLog is the loaders' log level (to Log); "error" when empty.
	LoaderLog string
}

// Report is what a run measured.
type Report struct {
	Opt              Options
	PerDate          time.Duration // one date synced alone
	Wall             time.Duration // planner run until the queue drained
	DeadLettered     int           // dates whose message reached the dead-letter topic
	Failed           int           // dates whose latest state is failed
	Unfinished       int           // dates not finished
	Lost, Duplicated int64
	Deliveries       int // delivery attempts, including 429s and continuations
	Stats            bqfidelity.Stats
	// Note says how the run's times relate to production (push).
	Note string
}

// Ideal is the wall time of perfect packing.
func (r *Report) Ideal() time.Duration {
	return time.Duration(float64(r.PerDate) * float64(r.Opt.Dates) / float64(r.Opt.Loaders))
}

// Efficiency is Ideal ÷ Wall.
func (r *Report) Efficiency() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return r.Ideal().Seconds() / r.Wall.Seconds()
}

// RateLimited sums the proxy's refusals by limit.
func (r *Report) RateLimited() int {
	n := 0
	for _, v := range r.Stats.RateLimited {
		n += v
	}
	return n
}

// DeliveriesPerDate is the mean number of deliveries per date.
func (r *Report) DeliveriesPerDate() float64 {
	return float64(r.Deliveries) / float64(r.Opt.Dates)
}

// Line is the run's summary line.
func (r *Report) Line() string {
	return fmt.Sprintf("scale: dates=%d loaders=%d job_latency_s=%g wall_s=%.1f ideal_s=%.1f efficiency=%.2f dead_lettered=%d failed=%d lost=%d duplicated=%d publish_conflicts=%d rate_limited=%d deliveries_per_date=%.2f",
		r.Opt.Dates, r.Opt.Loaders, r.Opt.JobLatency.Seconds(), r.Wall.Seconds(), r.Ideal().Seconds(), r.Efficiency(),
		r.DeadLettered, r.Failed, r.Lost, r.Duplicated, r.Stats.TransactionConflicts, r.RateLimited(), r.DeliveriesPerDate())
}

type run struct {
	opt         Options
	first, last civil.Date // the back-fill's dates
	calib       civil.Date // synced alone first, outside the back-fill
	client      *bigquery.Client
	state       *syncstate.Store
	instances   []*instance
}

// instance is one loader: its own connection pool, warehouse and encoder,
// as a separate process would have.
type instance struct {
	src    *pgsource.Source
	syncer *loader.Syncer
}

func (r *run) logf(format string, args ...any) {
	if r.opt.Log != nil {
		fmt.Fprintf(r.opt.Log, "scale: "+format+"\n", args...)
	}
}

// Run performs one run. An error means it could not be carried out; what
// went wrong with the data is in the report.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Mode != Pull && opt.Mode != Push {
		return nil, fmt.Errorf("mode %q: want %s or %s", opt.Mode, Pull, Push)
	}
	if opt.Mode == Pull && opt.Outstanding < 1 {
		return nil, fmt.Errorf("outstanding %d: a loader works at least one date", opt.Outstanding)
	}
	if opt.Dates < 1 || opt.Loaders < 1 || opt.RowsPerDate < 1 || opt.ChunkSize < 1 {
		return nil, errors.New("dates, loaders, rows per date and chunk size must be positive")
	}
	if opt.Mode == Push && (opt.TimeScale <= 0 || opt.TimeScale > 1) {
		return nil, fmt.Errorf("time scale %g: want 0 < scale <= 1", opt.TimeScale)
	}
	opt.BQ = opt.BQ.WithDefaults()
	if opt.MaxDatesPerRun <= 0 {
		opt.MaxDatesPerRun = opt.Dates
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	// The loaders log errors only unless told otherwise; the run's own
	// progress goes to opt.Log.
	logOut := opt.Log
	if logOut == nil {
		logOut = io.Discard
	}
	ctx = logging.With(ctx, logging.New(logOut, cmp.Or(opt.LoaderLog, "error")))

	r := &run{opt: opt}
	r.last = civil.DateOf(time.Now().UTC()).AddDays(-3)
	r.first = r.last.AddDays(-(opt.Dates - 1))
	r.calib = r.first.AddDays(-1)
	if err := r.seed(ctx); err != nil {
		return nil, err
	}
	var err error
	if r.client, err = bq.NewClient(ctx, opt.BQ); err != nil {
		return nil, err
	}
	defer r.client.Close()
	r.state = syncstate.New(r.client, opt.BQ.Project, opt.BQ.StateDataset)
	for i := range opt.Loaders {
		in, err := r.newInstance(ctx, i)
		if err != nil {
			return nil, err
		}
		defer in.src.Close()
		r.instances = append(r.instances, in)
	}
	rep := &Report{Opt: opt}
	if rep.PerDate, err = r.calibrate(ctx); err != nil {
		return nil, err
	}
	r.logf("one date alone: %.1f s (%d rows, chunk %d, job latency %s)", rep.PerDate.Seconds(), opt.RowsPerDate, opt.ChunkSize, opt.JobLatency)
	// Every date's publish modifies a partition of the one destination
	// table, and the loaders publish together, one batch at a time, each
	// holding the turn for bq.PublishHold: no wall time can beat that,
	// however many loaders there are. (Push scales the fidelity layer's
	// rates, and the loaders' turns with them.)
	if opt.Mode == Pull {
		per := bq.PublishHold(bq.PublishBatch) / bq.PublishBatch
		r.logf("publishing bound: %d dates × %.2f s = %.0f s at least (BigQuery's 50 partition modifications per table per 10 s); perfect packing: %.0f s",
			opt.Dates, per.Seconds(), float64(opt.Dates)*per.Seconds(), rep.Ideal().Seconds())
	}
	start := time.Now()
	switch opt.Mode {
	case Pull:
		err = r.pull(ctx, rep)
	case Push:
		err = r.push(ctx, rep)
	}
	rep.Wall = time.Since(start)
	if err != nil {
		return nil, err
	}
	rep.Stats = opt.Proxy.Stats()
	r.logf("fidelity layer: jobs run %v, DML %v, rate limited %v, transaction conflicts %d, DML queued %d; requests that reached the emulator %v",
		rep.Stats.JobsRun, rep.Stats.DMLRun, rep.Stats.RateLimited, rep.Stats.TransactionConflicts, rep.Stats.DMLQueued, rep.Stats.EmulatorRequests)
	if err := r.check(ctx, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// seed creates Table with RowsPerDate rows on each back-fill date and on
// the calibration date before them; ids rise with time.
func (r *run) seed(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, r.opt.PGDSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	days := r.opt.Dates + 1
	_, err = conn.Exec(ctx, fmt.Sprintf(`
CREATE TABLE %[1]s (
  id bigint PRIMARY KEY, created_at timestamptz NOT NULL, user_id integer, kind text,
  amount numeric(12,2), payload jsonb
);
INSERT INTO %[1]s
SELECT g, TIMESTAMPTZ '%[2]s 00:00:00+00' + ((g - 1) / %[3]d) * interval '1 day' + ((g - 1) %% %[3]d) * (interval '86399 seconds' / %[3]d),
       g %% 1000, (ARRAY['view','click','buy'])[1 + g %% 3], (g %% 100000) / 100.0, jsonb_build_object('g', g)
FROM generate_series(1, %[4]d) g;
CREATE INDEX ON %[1]s (created_at, id);
ANALYZE %[1]s;`, pgx.Identifier{Table}.Sanitize(), r.calib, r.opt.RowsPerDate, days*r.opt.RowsPerDate))
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	r.logf("seeded %d rows: %d dates %s..%s and %s alone first", days*r.opt.RowsPerDate, r.opt.Dates, r.first, r.last, r.calib)
	return nil
}

func (r *run) newInstance(ctx context.Context, i int) (*instance, error) {
	src, err := pgsource.Open(ctx, pgsource.Config{DSN: r.opt.PGDSN}, pgsource.TableSpec{Table: Table, IDColumn: "id", TimestampColumn: "created_at"})
	if err != nil {
		return nil, err
	}
	wh, err := bq.NewWarehouse(r.client, r.opt.BQ, Table, src.Table())
	if err == nil {
		// What each loader does at start; the schema lease lets one of
		// them create the table and the others only read it.
		err = loader.EnsureDestination(ctx, src, wh)
	}
	var enc *parquetenc.Encoder
	if err == nil {
		enc, err = parquetenc.New(src.Table())
	}
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("loader %d: %w", i, err)
	}
	s := &loader.Syncer{Source: src, Warehouse: wh, State: r.state, Encoder: enc,
		Table: Table, ChunkSize: r.opt.ChunkSize, Grace: time.Hour, Writer: fmt.Sprintf("loader-%d", i)}
	if r.opt.Mode == Push {
		// The fidelity layer's rates are scaled up by the same factor.
		s.PublishHold = func(n int) time.Duration {
			return time.Duration(float64(bq.PublishHold(n)) * r.opt.TimeScale)
		}
	}
	return &instance{src: src, syncer: s}, nil
}

// calibrate syncs the calibration date alone on one loader, to the end.
func (r *run) calibrate(ctx context.Context) (time.Duration, error) {
	day := r.calib.In(time.UTC)
	s := r.instances[0].syncer
	start := time.Now()
	for {
		out, err := s.Sync(ctx, day, time.Now().Add(loader.PullBudget))
		if err != nil {
			return 0, fmt.Errorf("calibration date %s: %w", r.calib, err)
		}
		if out == loader.Finished {
			return time.Since(start), nil
		}
		if out != loader.Continue {
			return 0, fmt.Errorf("calibration date %s: outcome %s", r.calib, out)
		}
	}
}

// planner is the planner of the back-fill, whose clock says it is the last
// back-fill date, so that it plans exactly the back-fill's dates.
func (r *run) planner(pub planner.Publisher) *planner.Planner {
	in := r.instances[0]
	noon := r.last.In(time.UTC).Add(12 * time.Hour)
	return &planner.Planner{Source: in.src, Dest: in.syncer.Warehouse, State: r.state, Pub: pub, Table: Table,
		Start: r.first.In(time.UTC), InFlight: time.Hour, MaxDates: r.opt.MaxDatesPerRun,
		Now: func() time.Time { return noon }}
}

// check compares the ids of every back-fill date in PostgreSQL and
// BigQuery and reads each date's state.
func (r *run) check(ctx context.Context, rep *Report) error {
	from, to := r.first.In(time.UTC), r.last.AddDays(1).In(time.UTC)
	conn, err := pgx.Connect(ctx, r.opt.PGDSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT id FROM %s WHERE created_at >= $1 AND created_at < $2`, pgx.Identifier{Table}.Sanitize()), from, to)
	if err != nil {
		return err
	}
	src := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		src[id] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	ids, err := bq.Rows[struct {
		ID int64 `bigquery:"id"`
	}](bq.RunQuery(ctx, r.client, fmt.Sprintf("SELECT id FROM %s WHERE created_at >= TIMESTAMP '%s' AND created_at < TIMESTAMP '%s'",
		bq.Ref(r.opt.BQ.Project, r.opt.BQ.Dataset, Table), from.Format(time.RFC3339), to.Format(time.RFC3339))))
	if err != nil {
		return err
	}
	dest := map[int64]int{}
	for _, row := range ids {
		dest[row.ID]++
	}
	for id, n := range dest {
		rep.Duplicated += int64(n - 1)
		if !src[id] {
			rep.Duplicated++ // a row the source does not have counts as wrong too
		}
	}
	for id := range src {
		if dest[id] == 0 {
			rep.Lost++
		}
	}
	latest, err := r.state.Latest(ctx, Table)
	if err != nil {
		return err
	}
	for d := r.first; !d.After(r.last); d = d.AddDays(1) {
		e := latest[d]
		if e.State == syncstate.StateFailed {
			rep.Failed++
		}
		if !e.IsFinished {
			rep.Unfinished++
		}
	}
	return nil
}
