#!/usr/bin/env bash
# make bench: on a throwaway PostgreSQL cluster and the BigQuery emulator,
# seed activity_logs (5M rows over 30 days, one day of 2M rows) and a copy
# with shuffled ids, then measure binary COPY throughput, extract+encode
# throughput, per-chunk read times, the real loader end to end with its
# peak RSS, and the big day synced through the fidelity layer with and
# without 3 s job latency (see dev/bench/main.go). Arguments go to the
# bench program, e.g.
#   bash dev/bench.sh --rows 500000 --big-day-rows 200000 --e2e-budget 2m
# The last line printed is
#   bench: copy_rows_per_s=C extract_encode_rows_per_s=E end_to_end_rows_per_s=T ratio=R peak_rss_mb=M ... chunk_flatness_rising=FR chunk_flatness_shuffled=FS latency_hiding=H publish_bytes_per_day=P
# Everything it starts is stopped and removed at the end.
source "$(dirname "$0")/stack.sh"
cd "$ROOT"
mkdir -p "$STACK_DIR/bin"
go build -o "$STACK_DIR/bin/" ./loader ./dev/bench
stack_start
PG_ADMIN_DSN="$PG_ADMIN_DSN" BQ_ENDPOINT="$BQ_ENDPOINT" BQ_EMULATOR_ENDPOINT="$BQ_EMULATOR_ENDPOINT" BQ_EMU_PROJECT="$BQ_EMU_PROJECT" \
  "$STACK_DIR/bin/bench" --loader "$STACK_DIR/bin/loader" --work "$STACK_DIR" "$@"
