#!/usr/bin/env bash
# make trial: the README's own-table steps (the block after the line
# "<!-- own-table-steps: dev/trial runs this block literally -->"), run
# literally as a new user would, on a PostgreSQL table with 400 dates of
# history (PGBQ_TRIAL_DATES to change it); see internal/trial. It ends with
# the line "trial: dates=400 ended=true minutes=M finished=400 ...".
# `make test` runs the same test at 40 dates.
source "$(dirname "$0")/stack.sh"
cd "$ROOT"
stack_start
export PGBQ_TEST_PG_DSN="$PG_ADMIN_DSN" PGBQ_TEST_BQ_ENDPOINT="$BQ_ENDPOINT" PGBQ_TEST_BQ_PROJECT="$BQ_EMU_PROJECT" \
  PGBQ_TEST_BQ_EMULATOR_ENDPOINT="$BQ_EMULATOR_ENDPOINT" CI="${CI:-true}" PGBQ_TRIAL_DATES="${PGBQ_TRIAL_DATES:-400}"
go test -count=1 -timeout 90m -run '^TestOwnTableTrial$' -v ./internal/trial/
