// Package testenv gives tests their own PostgreSQL database and BigQuery
// dataset on the servers `make test` starts (dev/test.sh): a throwaway
// PostgreSQL cluster and the bqemulator BigQuery emulator.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/bqfidelity"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Variables dev/test.sh sets.
const (
	EnvPG        = "PGBQ_TEST_PG_DSN"
	EnvBQ        = "PGBQ_TEST_BQ_ENDPOINT"
	EnvBQProject = "PGBQ_TEST_BQ_PROJECT"
	// EnvCI, set to anything (CI systems set it; make test and .ci/run
	// do), turns a missing dependency from a skip into a failure.
	EnvCI = "CI"
)

// need returns the variable name, which points the test at what (the
// service it needs). Without it the test fails when CI is set, and
// otherwise skips saying what is missing: under CI nothing skips.
func need(t testing.TB, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv(EnvCI) != "" {
			t.Fatalf("%s is not set, so this test has no %s; %s is set, so that fails instead of skipping: run the tests with `make test`, which starts it", name, what, EnvCI)
		}
		t.Skipf("SKIP: %s is not set, so this test has no %s: `make test` starts it and sets %s (with %s set, this skip is a failure)", name, what, name, EnvCI)
	}
	return v
}

// Name returns a unique lower-case name with prefix.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// PG creates a fresh database and returns its DSN and a pool on it.
func PG(t testing.TB) (string, *pgxpool.Pool) {
	t.Helper()
	return PGEncoded(t, "")
}

// PGEncoded is PG with the database created in encoding (e.g. SQL_ASCII)
// from template0; "" is the server's default.
func PGEncoded(t testing.TB, encoding string) (string, *pgxpool.Pool) {
	t.Helper()
	admin := need(t, EnvPG, "PostgreSQL server")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	db := Name("t")
	create := "CREATE DATABASE " + pgx.Identifier{db}.Sanitize()
	if encoding != "" {
		create += " ENCODING " + pgx.Identifier{encoding}.Sanitize() + " TEMPLATE template0"
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		t.Fatalf("create database: %v", err)
	}
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, db)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", db, err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	return dsn, pool
}

// BQ is a fresh dataset on the emulator.
type BQ struct {
	Endpoint, Project, Dataset string
	Client                     *bigquery.Client
}

// Config is a bq.Config for the dataset.
func (b BQ) Config() bq.Config {
	return bq.Config{Project: b.Project, Dataset: b.Dataset, Location: "US", Endpoint: b.Endpoint}.WithDefaults()
}

// BigQuery creates a dataset on the emulator for this test.
func BigQuery(t testing.TB) BQ {
	t.Helper()
	return bigQueryAt(t, need(t, EnvBQ, "BigQuery fidelity layer in front of the emulator"))
}

func bigQueryAt(t testing.TB, endpoint string) BQ {
	t.Helper()
	b := BQ{Endpoint: endpoint, Project: os.Getenv(EnvBQProject), Dataset: Name("ds")}
	if b.Project == "" {
		b.Project = "pgbq-test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := bq.NewClient(ctx, b.Config())
	if err != nil {
		t.Fatal(err)
	}
	b.Client = client
	if err := bq.EnsureDatasets(ctx, client, b.Config()); err != nil {
		t.Fatalf("create dataset: %v", err)
	}
	// What `planner migrate` does once per deploy.
	if err := syncstate.New(client, b.Project, b.Dataset).Migrate(ctx); err != nil {
		t.Fatalf("create sync_control: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = client.Dataset(b.Dataset).DeleteWithContents(ctx)
		client.Close()
	})
	return b
}

// Exec runs statements on pool, failing the test on error.
func Exec(t testing.TB, pool *pgxpool.Pool, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, s := range sql {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("exec %s: %v", strings.TrimSpace(s), err)
		}
	}
}

// EnvBQEmulator is the BigQuery emulator's own endpoint, beneath the
// fidelity layer that EnvBQ points at (dev/test.sh sets both).
const EnvBQEmulator = "PGBQ_TEST_BQ_EMULATOR_ENDPOINT"

// Fidelity starts a BigQuery fidelity layer of its own for this test, in
// front of the emulator, and a dataset behind it: for tests that set job
// latency or inject faults without touching other tests.
func Fidelity(t testing.TB, opt bqfidelity.Options) (BQ, *bqfidelity.Proxy) {
	t.Helper()
	p, err := bqfidelity.Start(need(t, EnvBQEmulator, "BigQuery emulator"), opt)
	if err != nil {
		t.Fatalf("start the BigQuery fidelity layer: %v", err)
	}
	t.Cleanup(p.Close)
	return bigQueryAt(t, p.Endpoint()), p
}
