// Package app wires the shared configuration to the real services; both
// binaries start through it, so they agree on every name and default.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/pubsub/v2"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/loader"
	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/pubsubx"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Table is one configured table's source and destination.
type Table struct {
	Config    config.TableConfig
	Source    *pgsource.Source
	Warehouse *bq.Warehouse
}

// Deps are the connected services of the configured tables.
type Deps struct {
	Tables []*Table
	// Broken holds, when Open was asked to skip them, the tables that
	// could not be opened, each error naming the variable to fix.
	Broken    []error
	BQ        *bigquery.Client
	State     *syncstate.Store
	PubSub    *pubsub.Client
	Publisher *pubsubx.Publisher
	// Now is the clock everything built from Deps asks what day it is:
	// the syncers, the planners and sync_control's time stamps.
	Now func() time.Time
}

// Option changes how Open wires the services.
type Option func(*Deps)

// WithClock makes now the clock of Deps (time.Now by default); tests pin
// the day with it.
func WithClock(now func() time.Time) Option {
	return func(d *Deps) { d.Now = now }
}

// Open connects everything c names, creates what is missing in BigQuery
// (datasets, sync_control, the destination tables) and checks each source
// table. Problems with a table name the variable to fix; a table that
// cannot be synced stops the start, or with skipBroken is set aside in
// Deps.Broken so the others can go on.
func Open(ctx context.Context, c *config.Common, needTopic, skipBroken bool, opts ...Option) (*Deps, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tables, err := c.TableConfigs()
	if err != nil {
		return nil, err
	}
	d := &Deps{Now: time.Now}
	for _, o := range opts {
		o(d)
	}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	var errs []error
	for i, tc := range tables {
		src, err := pgsource.Open(ctx, c.PG, tc.Spec())
		if err != nil {
			errs = append(errs, NameSpecErrors(err, Variables(c, i)))
			continue
		}
		d.Tables = append(d.Tables, &Table{Config: tc, Source: src})
	}
	if skipBroken {
		d.Broken, errs = errs, nil
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d.BQ, err = bq.NewClient(ctx, c.BQ)
	if err != nil {
		return nil, err
	}
	if err := bq.EnsureDatasets(ctx, d.BQ, c.BQ); err != nil {
		return nil, err
	}
	for _, t := range d.Tables {
		t.Warehouse, err = bq.NewWarehouse(d.BQ, c.BQ, t.Config.DestTable, t.Source.Table())
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Config.Table, err)
		}
		if err := loader.EnsureDestination(ctx, t.Source, t.Warehouse); err != nil {
			return nil, err
		}
	}
	d.State = syncstate.New(d.BQ, c.BQ.Project, c.BQ.StateDataset).WithClock(d.Now)
	if err := d.State.Check(ctx); err != nil {
		return nil, err
	}
	if needTopic {
		d.PubSub, err = pubsubx.NewClient(ctx, c.PubSub)
		if err != nil {
			return nil, err
		}
		d.Publisher = pubsubx.NewPublisher(d.PubSub, c.PubSub.Topic)
	}
	ok = true
	return d, nil
}

// Variables names the settings of table i: the single-table variables, or
// the fields of SYNC_TABLES[i].
func Variables(c *config.Common, i int) map[string]string {
	if c.Sync.Tables == "" {
		return map[string]string{"table": "SYNC_TABLE", "id": "SYNC_ID_COLUMN", "timestamp": "SYNC_TIMESTAMP_COLUMN", "time_zone": "SYNC_TIME_ZONE"}
	}
	p := fmt.Sprintf("SYNC_TABLES[%d].", i)
	return map[string]string{"table": p + "table", "id": p + "id_column", "timestamp": p + "timestamp_column", "time_zone": p + "time_zone"}
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
		t.Source.Close()
	}
}

// NewSyncer builds the chunk loop of table t.
func (d *Deps) NewSyncer(c *config.Common, t *Table, writer string) (*loader.Syncer, error) {
	enc, err := parquetenc.New(t.Source.Table())
	if err != nil {
		return nil, err
	}
	return &loader.Syncer{Source: t.Source, Warehouse: t.Warehouse, State: d.State, Encoder: enc,
		Table: t.Config.DestTable, ChunkSize: t.Config.ChunkSize, Grace: c.Sync.Grace, Writer: writer, Now: d.Now}, nil
}
