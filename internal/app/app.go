// Package app wires the shared configuration to the real services; both
// binaries start through it, so they agree on every name and default.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"cloud.google.com/go/pubsub/v2"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/loader"
	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/pubsubx"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Table is one configured table's source and destination.
type Table struct {
	Config config.TableConfig
	// Source and Warehouse are nil when the table could not be opened
	// that far (see Broken).
	Source    *pgsource.Source
	Warehouse *bq.Warehouse
	// Broken, when set, is why this table cannot be synced now: its
	// source is missing or unreadable, a column cannot travel, or its
	// destination no longer matches (a column retyped, renamed or
	// dropped since the last sync). It concerns this table only: the
	// others are planned and loaded as usual, and the error names the
	// variable or the change to make.
	Broken error
	vars   map[string]string
}

// Deps are the connected services of the configured tables.
type Deps struct {
	// Tables are all configured tables, broken ones included (see
	// Table.Broken); Healthy lists the others.
	Tables    []*Table
	BQ        *bigquery.Client
	State     *syncstate.Store
	PubSub    *pubsub.Client
	Publisher *pubsubx.Publisher
	// Now is the clock everything built from Deps asks what day it is:
	// the syncers, the planners and sync_control's time stamps.
	Now func() time.Time

	publish bool
	common  *config.Common
	// reopened are the sources of broken tables that opened again
	// (see NewSyncer), closed with the rest.
	mu       sync.Mutex
	reopened []*pgsource.Source
}

// Option changes how Open wires the services.
type Option func(*Deps)

// WithClock makes now the clock of Deps (time.Now by default); tests pin
// the day with it.
func WithClock(now func() time.Time) Option {
	return func(d *Deps) { d.Now = now }
}

// WithPublisher connects to Pub/Sub and makes Deps.Publisher publish to
// PUBSUB_TOPIC (the planner's runs, the loader's continuations).
func WithPublisher() Option {
	return func(d *Deps) { d.publish = true }
}

// Open connects everything c names, creates what is missing in BigQuery
// (datasets, sync_control, the destination tables) and checks each source
// table. A table that cannot be synced does not stop the start: it is
// marked Broken, with an error naming the variable to fix or the change
// to undo, and the other tables go on. Open fails only for what every
// table needs (the configuration, BigQuery, sync_control, Pub/Sub).
func Open(ctx context.Context, c *config.Common, opts ...Option) (*Deps, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tables, err := c.TableConfigs()
	if err != nil {
		return nil, err
	}
	d := &Deps{Now: time.Now, common: c}
	for _, o := range opts {
		o(d)
	}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	d.BQ, err = bq.NewClient(ctx, c.BQ)
	if err != nil {
		return nil, err
	}
	if err := bq.EnsureDatasets(ctx, d.BQ, c.BQ); err != nil {
		return nil, err
	}
	for i, tc := range tables {
		t := &Table{Config: tc, vars: Variables(c, i)}
		t.Source, t.Warehouse, t.Broken = d.openTable(ctx, t)
		if t.Broken != nil {
			logging.From(ctx).Error("table cannot be synced", "table", tc.DestTable, "error", t.Broken.Error())
		}
		d.Tables = append(d.Tables, t)
	}
	d.State = syncstate.New(d.BQ, c.BQ.Project, c.BQ.StateDataset).WithClock(d.Now)
	if err := d.State.Check(ctx); err != nil {
		return nil, err
	}
	if d.publish {
		d.PubSub, err = pubsubx.NewClient(ctx, c.PubSub)
		if err != nil {
			return nil, err
		}
		d.Publisher = pubsubx.NewPublisher(d.PubSub, c.PubSub.Topic)
	}
	ok = true
	return d, nil
}

// openTable opens t's source, checks it and its destination. What it
// could open comes back even with an error, so that status and verify
// can still count a table whose destination no longer matches; the
// caller owns (and closes) a non-nil source.
func (d *Deps) openTable(ctx context.Context, t *Table) (*pgsource.Source, *bq.Warehouse, error) {
	name := t.Config.Table
	src, err := pgsource.Open(ctx, d.common.PG, t.Config.Spec())
	if err != nil {
		return nil, nil, fmt.Errorf("table %s: %w", name, NameSpecErrors(err, t.vars))
	}
	wh, err := bq.NewWarehouse(d.BQ, d.common.BQ, t.Config.DestTable, src.Table())
	if err != nil {
		return src, nil, fmt.Errorf("table %s: %w", name, err)
	}
	if err := loader.EnsureDestination(ctx, src, wh); err != nil {
		return src, wh, fmt.Errorf("table %s: %w", name, err)
	}
	return src, wh, nil
}

// Healthy lists the tables that are not broken.
func (d *Deps) Healthy() []*Table {
	var out []*Table
	for _, t := range d.Tables {
		if t.Broken == nil {
			out = append(out, t)
		}
	}
	return out
}

// Broken joins the errors of the broken tables (nil when none is).
func (d *Deps) Broken() error {
	var errs []error
	for _, t := range d.Tables {
		if t.Broken != nil {
			errs = append(errs, t.Broken)
		}
	}
	return errors.Join(errs...)
}

// Variables names the settings of table i: the single-table variables, or
// the fields of SYNC_TABLES[i].
func Variables(c *config.Common, i int) map[string]string {
	if c.Sync.Tables == "" {
		return map[string]string{"table": "SYNC_TABLE", "id": "SYNC_ID_COLUMN", "timestamp": "SYNC_TIMESTAMP_COLUMN", "time_zone": "SYNC_TIME_ZONE"}
	}
	p := fmt.Sprintf("SYNC_TABLES[%d].", i)
	return map[string]string{"table": p + "table", "id": p + "id_column", "timestamp": p + "timestamp_column", "time_zone": p + "time_zone",
		"columns": p + "columns", "exclude": p + "exclude"}
}

// NameSpecErrors rewrites the source's errors about the table, the id
// column and the timestamp column to name the variable to fix.
func NameSpecErrors(err error, vars map[string]string) error {
	var errs []error
	visit := func(e error) {
		var se *pgsource.SpecError
		if errors.As(e, &se) {
			errs = append(errs, fmt.Errorf("%s: %s", vars[se.Field], se.Msg))
			return
		}
		errs = append(errs, e)
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			visit(e)
		}
	} else {
		visit(err)
	}
	return errors.Join(errs...)
}

// Close releases every connection.
func (d *Deps) Close() {
	if d.Publisher != nil {
		d.Publisher.Stop()
	}
	if d.PubSub != nil {
		d.PubSub.Close()
	}
	if d.BQ != nil {
		d.BQ.Close()
	}
	for _, t := range d.Tables {
		if t.Source != nil {
			t.Source.Close()
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.reopened {
		s.Close()
	}
}

// NewSyncer builds the chunk loop of table t. A broken table gets a
// syncer that tries to open the table again on each message and, while it
// still cannot, fails the date with the reason (recorded, not retried).
func (d *Deps) NewSyncer(c *config.Common, t *Table, writer string) (*loader.Syncer, error) {
	s := &loader.Syncer{Source: t.Source, Warehouse: t.Warehouse, State: d.State,
		Table: t.Config.DestTable, ChunkSize: t.Config.ChunkSize, Grace: c.Sync.Grace, Writer: writer, Now: d.Now}
	if start, ok := t.Config.Start(); ok {
		s.Start = civil.DateOf(start)
	}
	if t.Broken != nil {
		s.Source, s.Warehouse, s.Broken = nil, nil, t.Broken
		s.Reopen = func(ctx context.Context) (*pgsource.Source, *bq.Warehouse, error) {
			src, wh, err := d.openTable(ctx, t)
			if err != nil && src != nil {
				src.Close()
			}
			if err == nil {
				d.mu.Lock()
				d.reopened = append(d.reopened, src)
				d.mu.Unlock()
			}
			return src, wh, err
		}
		return s, nil
	}
	enc, err := parquetenc.New(t.Source.Table())
	if err != nil {
		return nil, err
	}
	s.Encoder = enc
	return s, nil
}
