package bq

import (
	"context"
	"fmt"
	"net/http"
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

// StagedWithOwnColumns reports whether the staging table of day holds
// exactly the columns w stages (names, types and modes, in order), by the
// table's metadata: the truth of what its rows hold, whatever the process
// that staged them knew of the source. A missing table is false.
func (w *Warehouse) StagedWithOwnColumns(ctx context.Context, day time.Time) (bool, error) {
	got, err := w.Client.Dataset(w.cfg.StagingDataset).Table(w.Staging(day)).Metadata(ctx)
	if IsStatus(err, http.StatusNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read table %s: %w", w.Staging(day), err)
	}
	want := StagingSchema(w.table)
	return len(got.Schema) == len(want) && checkSchema(w.Staging(day), got.Schema, want) == nil, nil
}
