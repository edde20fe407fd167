#!/usr/bin/env bash
# make test: start PostgreSQL and the BigQuery emulator, run every Go test
# against them (Pub/Sub is pstest, in-process), stop them. BigQuery is the
# emulator behind the fidelity proxy (see dev/stack.sh).
source "$(dirname "$0")/stack.sh"
cd "$ROOT"
go mod download
stack_start
# CI turns a test that finds a dependency missing into a failure, never a skip.
export PGBQ_TEST_PG_DSN="$PG_ADMIN_DSN" PGBQ_TEST_BQ_ENDPOINT="$BQ_ENDPOINT" PGBQ_TEST_BQ_PROJECT="$BQ_EMU_PROJECT" \
  PGBQ_TEST_BQ_EMULATOR_ENDPOINT="$BQ_EMULATOR_ENDPOINT" CI="${CI:-true}"
go vet ./...
go test -count=1 -timeout 20m "$@" ./...
