#!/usr/bin/env bash
# make test-clocks: the packages that ask what day it is, with the tests'
# clock pinned (PGBQ_TEST_NOW) just after UTC midnight, a minute before it,
# and on the last day of a year, on one stack.
source "$(dirname "$0")/stack.sh"
cd "$ROOT"
stack_start
export PGBQ_TEST_PG_DSN="$PG_ADMIN_DSN" PGBQ_TEST_BQ_ENDPOINT="$BQ_ENDPOINT" PGBQ_TEST_BQ_PROJECT="$BQ_EMU_PROJECT" CI="${CI:-true}"
for at in 2026-06-10T00:30:00Z 2026-06-10T23:59:00Z 2026-12-31T23:59:00Z 2027-01-01T00:30:00Z; do
  echo "test-clocks: PGBQ_TEST_NOW=$at" >&2
  PGBQ_TEST_NOW="$at" go test -count=1 -timeout 20m "$@" ./planner ./loader ./internal/planner ./internal/loader
done
