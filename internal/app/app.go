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

// Deps are the connected services of one configured table.
type Deps struct {
	Source    *pgsource.Source
	BQ        *bigquery.Client
	Warehouse *bq.Warehouse
	State     *syncstate.Store
	PubSub    *pubsub.Client
	Publisher *pubsubx.Publisher
}

// Open connects everything c names, creates what is missing in BigQuery
// (datasets, sync_control, the destination table) and checks the source
// table. Problems with the table name the variable to fix.
func Open(ctx context.Context, c *config.Common, needTopic bool) (*Deps, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d := &Deps{}
	var err error
	d.Source, err = pgsource.Open(ctx, c.PG, c.Sync.Spec())
	if err != nil {
		return nil, NameSpecErrors(err)
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
	d.Warehouse, err = bq.NewWarehouse(d.BQ, c.BQ, c.Sync.DestTable, d.Source.Table())
	if err != nil {
		return nil, fmt.Errorf("SYNC_TABLE %s: %w", c.Sync.Table, err)
	}
	if err := d.Warehouse.EnsureDestination(ctx); err != nil {
		return nil, err
	}
	d.State = syncstate.New(d.BQ, c.BQ.Project, c.BQ.StateDataset)
	if err := d.State.Ensure(ctx); err != nil {
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

// NameSpecErrors rewrites the source's errors about the table, the id
// column and the timestamp column to name the variable to fix.
func NameSpecErrors(err error) error {
	var errs []error
	visit := func(e error) {
		var se *pgsource.SpecError
		if errors.As(e, &se) {
			v := map[string]string{"table": "SYNC_TABLE", "id": "SYNC_ID_COLUMN", "timestamp": "SYNC_TIMESTAMP_COLUMN"}[se.Field]
			errs = append(errs, fmt.Errorf("%s: %s", v, se.Msg))
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
	if d.Source != nil {
		d.Source.Close()
	}
}

// NewSyncer builds the chunk loop for the configured table.
func (d *Deps) NewSyncer(c *config.Common, writer string) (*loader.Syncer, error) {
	enc, err := parquetenc.New(d.Source.Table())
	if err != nil {
		return nil, err
	}
	return &loader.Syncer{Source: d.Source, Warehouse: d.Warehouse, State: d.State, Encoder: enc,
		Table: c.Sync.DestTable, ChunkSize: c.Sync.ChunkSize, Grace: c.Sync.Grace, Writer: writer}, nil
}
