package config

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sethvargo/go-envconfig"
)

func TestVariablesFromTags(t *testing.T) {
	t.Parallel()
	vars := map[string]Var{}
	for _, v := range Variables(&Common{}) {
		vars[v.Name] = v
	}
	for _, name := range []string{"PG_DSN", "PG_PASSWORD", "BQ_PROJECT", "BQ_DATASET", "BQ_ENDPOINT", "PUBSUB_TOPIC", "SYNC_TABLE", "SYNC_CHUNK_SIZE", "LOG_LEVEL"} {
		if _, ok := vars[name]; !ok {
			t.Errorf("variable %s not found in %v", name, vars)
		}
	}
	if vars["SYNC_CHUNK_SIZE"].Default != "250000" {
		t.Errorf("SYNC_CHUNK_SIZE default = %q", vars["SYNC_CHUNK_SIZE"].Default)
	}
}

func TestParseErrorNamesVariable(t *testing.T) {
	t.Parallel()
	var c Common
	err := Load(context.Background(), &c, envconfig.MapLookuper(map[string]string{"SYNC_FINISH_GRACE": "soon"}))
	if err == nil || !strings.HasPrefix(err.Error(), "configuration: SYNC_FINISH_GRACE: ") {
		t.Fatalf("error = %v", err)
	}
}

func TestTableConfigs(t *testing.T) {
	t.Parallel()
	load := func(env map[string]string) ([]TableConfig, error) {
		var c Common
		if err := Load(context.Background(), &c, envconfig.MapLookuper(env)); err != nil {
			return nil, err
		}
		return c.TableConfigs()
	}
	got, err := load(map[string]string{"SYNC_CHUNK_SIZE": "9", "SYNC_TABLES": `[
		{"table": "public.orders", "timestamp_column": "placed_at", "start_date": "2024-01-01"},
		{"table": "clicks", "id_column": "click_id", "dest_table": "click_events", "chunk_size": 5,
		 "columns": {"first name": "first_name"}, "exclude": ["secret"]}]`})
	if err != nil {
		t.Fatal(err)
	}
	want := []TableConfig{
		{Table: "public.orders", IDColumn: "id", TimestampColumn: "placed_at", DestTable: "orders", StartDate: "2024-01-01", ChunkSize: 9},
		{Table: "clicks", IDColumn: "click_id", TimestampColumn: "created_at", DestTable: "click_events", ChunkSize: 5,
			Columns: map[string]string{"first name": "first_name"}, Exclude: []string{"secret"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("tables (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "SYNC_TABLE is required"},
		{map[string]string{"SYNC_TABLE": "a", "SYNC_TABLES": `[{"table":"b"}]`}, "SYNC_TABLE and SYNC_TABLES are both set"},
		{map[string]string{"SYNC_TABLES": `{"table":"b"}`}, "SYNC_TABLES is not a JSON array"},
		{map[string]string{"SYNC_TABLES": `[{"table":"b","colour":"red"}]`}, `unknown field "colour"`},
		{map[string]string{"SYNC_TABLES": `[{"table":"a"},{"table":"b","chunk_size":-1}]`}, "SYNC_TABLES[1].chunk_size -1 is out of range"},
		{map[string]string{"SYNC_TABLES": `[{"table":"sales.orders"},{"table":"public.orders"}]`}, `SYNC_TABLES[1].table and SYNC_TABLES[0] (sales.orders) both sync into the BigQuery table "orders": set "dest_table" on one of them to another name, e.g. {"table": "public.orders", "dest_table": "public_orders"}`},
		{map[string]string{"SYNC_TABLES": `[{"table":""}]`}, "SYNC_TABLES[0].table is required"},
		{map[string]string{"SYNC_TABLE": "t", "SYNC_DEST_TABLE": "a-b"}, `SYNC_DEST_TABLE "a-b" is not a valid`},
		{map[string]string{"SYNC_TABLE": "t", "SYNC_TIME_ZONE": "Mars/Olympus"}, `SYNC_TIME_ZONE "Mars/Olympus" is not a time zone`},
		{map[string]string{"SYNC_TABLES": `[{"table":"a","time_zone":"CEST+2"}]`}, `SYNC_TABLES[0].time_zone "CEST+2" is not a time zone`},
	} {
		if _, err := load(tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.env, err, tc.want)
		}
	}
}
