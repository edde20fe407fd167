package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
)

// `loader --date` syncs in-process and publishes nothing: it needs no
// PUBSUB_TOPIC (here it gets as far as connecting to PostgreSQL).
func TestDateNeedsNoTopic(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	delete(env, "PUBSUB_TOPIC")
	err := run(context.Background(), []string{"--date", "2024-05-01"}, envconfig.MapLookuper(env), io.Discard)
	if err == nil || strings.Contains(err.Error(), "PUBSUB") || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("loader --date without PUBSUB_TOPIC: %v", err)
	}
}

// A variable set to the empty string is an error naming it, not zero.
func TestEmptyChunkSize(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	env["SYNC_CHUNK_SIZE"] = ""
	err := run(context.Background(), nil, envconfig.MapLookuper(env), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SYNC_CHUNK_SIZE is set but empty") {
		t.Fatalf("run with SYNC_CHUNK_SIZE empty: %v", err)
	}
}
