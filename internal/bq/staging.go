package bq

import (
	"context"
	"time"

	"cloud.google.com/go/bigquery"
)

// StagingTables are the staging tables of one destination, for a process
// that holds no Warehouse (no source schema): `planner resync` drops the
// staging of the dates it re-opens, so that their next sync starts a new
// generation with nothing adopted from before.
type StagingTables struct {
	w Warehouse
}

// NewStagingTables are the staging tables of dest under cfg.
func NewStagingTables(client *bigquery.Client, cfg Config, dest string) StagingTables {
	return StagingTables{w: Warehouse{Client: client, cfg: cfg.WithDefaults(), dest: dest}}
}

// DropStaging deletes the staging table of day; a missing table is fine.
func (s StagingTables) DropStaging(ctx context.Context, day time.Time) error {
	return s.w.DropStaging(ctx, day)
}
