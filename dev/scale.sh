#!/usr/bin/env bash
# make scale: a back-fill of many small dates with many loaders (internal/scale)
# on a throwaway PostgreSQL and the BigQuery emulator; dev/scale starts its own
# fidelity layer (job latency) in front of the emulator. Arguments go to
# dev/scale (e.g. --mode push --dates 100 --loaders 10 --job-latency 1s).
export PGBQ_FIDELITY=0 # dev/scale runs its own fidelity layer, for its counters
source "$(dirname "$0")/stack.sh"
cd "$ROOT"
go build -o "$STACK_DIR/scale" ./dev/scale
stack_start
export PG_ADMIN_DSN BQ_EMULATOR_ENDPOINT BQ_EMU_PROJECT
"$STACK_DIR/scale" "$@"
