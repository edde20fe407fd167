package loader

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/pgsource"
)

// Renamed columns — the key columns included — and excluded ones travel
// through the whole path (destination schema, partitioning, clustering,
// Parquet files, staged positions, publish): every type of the contract
// arrives under its new name with the same values as without renames,
// and an excluded column is never in BigQuery.
func TestRenamedColumnsRoundTrip(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.exec(typesDDL)
	day := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	plain := r.openSpec(pgsource.TableSpec{Table: "typed", IDColumn: "id", TimestampColumn: "created_at"}, "typed", 3)
	if got := r.syncAll(plain, day); got != Finished {
		t.Fatalf("plain outcome %v", got)
	}
	plainRef := r.wh.DestRef()
	cols := []string{"t", "ttz", "iv", "m", "mac", "mac8", "c1", "c5", "pi", "st", "net", "big", "n38", "b", "s"}
	rename := map[string]string{"id": "row_id", "created_at": "ts_at"}
	for _, c := range cols {
		rename[c] = "r_" + c
	}
	renamed := r.openSpec(pgsource.TableSpec{Table: "typed", IDColumn: "id", TimestampColumn: "created_at",
		Rename: rename, Exclude: []string{"f4"}}, "typed_renamed", 2)
	if got := r.syncAll(renamed, day); got != Finished {
		t.Fatalf("renamed outcome %v", got)
	}
	selPlain, selRenamed := "SELECT id, created_at", "SELECT row_id, ts_at"
	for _, c := range cols {
		selPlain += ", " + c
		selRenamed += ", r_" + c
	}
	want := r.bqRows(selPlain + " FROM " + plainRef + " ORDER BY id")
	got := r.bqRows(selRenamed + " FROM " + r.wh.DestRef() + " ORDER BY row_id")
	if len(want) != 4 {
		t.Fatalf("plain copy holds %d rows, want 4", len(want))
	}
	// Printed: NUMERIC values are *big.Rat, which cmp cannot look into.
	if diff := cmp.Diff(fmt.Sprint(want), fmt.Sprint(got)); diff != "" {
		t.Fatalf("renamed copy differs (-plain +renamed):\n%s", diff)
	}
	meta, err := r.bq.Client.Dataset(r.bq.Dataset).Table("typed_renamed").Metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range meta.Schema {
		if f.Name == "f4" || f.Name == "id" {
			t.Fatalf("destination has column %q: %v", f.Name, bq.BigQuerySchema(r.src.Table()))
		}
	}
	if meta.TimePartitioning == nil || meta.TimePartitioning.Field != "ts_at" || meta.Clustering == nil || meta.Clustering.Fields[0] != "row_id" {
		t.Fatalf("partitioning %+v, clustering %+v", meta.TimePartitioning, meta.Clustering)
	}
}
