package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pgbq/pgbq/internal/app"
	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/config"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// migrate creates what pgbq keeps in BigQuery — the datasets, the
// sync_control log and view, the destination tables — once per deploy
// (Cloud Build runs it after the deploy; the dev stack before the tests).
// Loaders and plain planner runs only read this metadata: BigQuery allows
// a few metadata writes per table every 10 s, and a fleet of instances
// creating tables at start would run into that limit. Running it again
// changes nothing.
func migrate(ctx context.Context, stdout io.Writer, c *config.Common) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	client, err := bq.NewClient(ctx, c.BQ)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := bq.EnsureDatasets(ctx, client, c.BQ); err != nil {
		return err
	}
	cfg := c.BQ.WithDefaults()
	if err := syncstate.New(client, cfg.Project, cfg.StateDataset).Migrate(ctx); err != nil {
		return err
	}
	// Opening the tables creates or extends their destinations.
	deps, err := app.Open(ctx, c)
	if err != nil {
		return err
	}
	defer deps.Close()
	fmt.Fprintf(stdout, "migrate: datasets=%s,%s,%s state=%s.%s tables=%d\n", cfg.Dataset, cfg.StagingDataset, cfg.StateDataset,
		cfg.StateDataset, syncstate.View, len(deps.Healthy()))
	// The other tables are migrated; a broken one fails the step.
	return deps.Broken()
}
