#!/usr/bin/env bash
# make chaos: the full fault-injection run (internal/chaos) against the
# BigQuery emulator; the run starts and restarts its own PostgreSQL cluster.
# Arguments go to dev/chaos (e.g. --rows 200000 --kills-per-moment 5).
source "$(dirname "$0")/stack.sh"
cd "$ROOT"
go build -o "$STACK_DIR/chaos" ./dev/chaos
stack_start
export BQ_ENDPOINT BQ_EMULATOR_ENDPOINT BQ_EMU_PROJECT
"$STACK_DIR/chaos" "$@"
