package config

import (
	"context"
	"strings"
	"testing"

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
