#!/usr/bin/env bash
# make mutations: the real binaries over a table whose rows change
# (internal/mutations), against the local stack's PostgreSQL and the
# BigQuery emulator behind the fidelity layer. Arguments go to
# dev/mutations (e.g. --rounds 6 --per-round 50).
source "$(dirname "$0")/stack.sh"
cd "$ROOT"
go build -o "$STACK_DIR/mutations" ./dev/mutations
stack_start
export PG_ADMIN_DSN BQ_ENDPOINT BQ_EMU_PROJECT
"$STACK_DIR/mutations" "$@"
