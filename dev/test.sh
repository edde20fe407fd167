#!/usr/bin/env bash
# make test: start PostgreSQL and the BigQuery emulator, run every Go test
# against them (Pub/Sub is pstest behind internal/localpubsub, in-process), stop them. BigQuery is the
# emulator behind the fidelity proxy (see dev/stack.sh).
source "$(dirname "$0")/stack.sh"
cd "$ROOT"
go mod download
stack_start
# CI turns a test that finds a dependency missing into a failure, never a skip.
export PGBQ_TEST_PG_DSN="$PG_ADMIN_DSN" PGBQ_TEST_BQ_ENDPOINT="$BQ_ENDPOINT" PGBQ_TEST_BQ_PROJECT="$BQ_EMU_PROJECT" \
  PGBQ_TEST_BQ_EMULATOR_ENDPOINT="$BQ_EMULATOR_ENDPOINT" CI="${CI:-true}"
go vet ./...
# Most tests wait on BigQuery job latency and rate limits rather than the
# CPU: four at a time in a package (go test's default is one a core)
# measured internal/loader at 246 s instead of 403–480 s on 2 cores.
go test -count=1 -timeout 20m -parallel 4 "$@" ./...
