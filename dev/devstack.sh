#!/usr/bin/env bash
# Local stand-ins for BigQuery and Pub/Sub, for running the planner and the
# loader against your own PostgreSQL (docs/getting-started.md, "Sync your own table").
#   dev/devstack.sh up     start the BigQuery emulator (behind the fidelity layer,
#                          which gives it BigQuery's rules the emulator lacks: partition
#                          decorators, rate limits) and the Pub/Sub fake in the
#                          background; write .devstack/env with the variables to source
#   dev/devstack.sh down   stop them
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${DEVSTACK_DIR:-$ROOT/.devstack}" # the trial (internal/trial) gives each run its own
BQ_REST_PORT="${DEVSTACK_BQ_PORT:-9050}"
BQ_GRPC_PORT="${DEVSTACK_BQ_GRPC_PORT:-9060}"
PS_PORT="${DEVSTACK_PUBSUB_PORT:-8085}"
PROJECT="${DEVSTACK_PROJECT:-pgbq-local}"

down() {
  [[ -f "$DIR/bq.pid" ]] && "$ROOT/dev/bqemu.sh" stop "$(cat "$DIR/bq.pid")" || true
  [[ -f "$DIR/pubsub.pid" ]] && kill "$(cat "$DIR/pubsub.pid")" 2>/dev/null || true
  [[ -f "$DIR/fidelity.pid" ]] && kill "$(cat "$DIR/fidelity.pid")" 2>/dev/null || true
  rm -f "$DIR/bq.pid" "$DIR/pubsub.pid" "$DIR/fidelity.pid" "$DIR/fidelity.endpoint"
}

up() {
  down
  mkdir -p "$DIR/bin"
  "$ROOT/dev/bqemu.sh" install
  (cd "$ROOT" && go build -o "$DIR/bin/" ./planner ./loader ./dev/pstestd ./dev/bqquery ./dev/bqfidelity)
  "$ROOT/dev/bqemu.sh" start "$BQ_REST_PORT" "$BQ_GRPC_PORT" "$PROJECT" "$DIR/bqemu.log" >"$DIR/bq.pid"
  nohup "$DIR/bin/bqfidelity" --emulator "http://127.0.0.1:$BQ_REST_PORT/bigquery/v2/" \
    --endpoint-file "$DIR/fidelity.endpoint" >"$DIR/fidelity.log" 2>&1 </dev/null &
  echo $! >"$DIR/fidelity.pid"
  for _ in $(seq 1 100); do [[ -s "$DIR/fidelity.endpoint" ]] && break; sleep 0.1; done
  [[ -s "$DIR/fidelity.endpoint" ]] || { cat "$DIR/fidelity.log" >&2; down; exit 1; }
  nohup "$DIR/bin/pstestd" --port "$PS_PORT" --project "$PROJECT" --topic dates --subscription dates-loader \
    >"$DIR/pstestd.log" 2>&1 </dev/null &
  echo $! >"$DIR/pubsub.pid"
  for _ in $(seq 1 100); do grep -q listening "$DIR/pstestd.log" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$DIR/pstestd.log" || { cat "$DIR/pstestd.log" >&2; down; exit 1; }
  cat >"$DIR/env" <<ENV
# Written by dev/devstack.sh up: the local BigQuery emulator and Pub/Sub fake.
export PATH="$DIR/bin:\$PATH"
export BQ_PROJECT=$PROJECT
export BQ_ENDPOINT=$(cat "$DIR/fidelity.endpoint")
export PUBSUB_EMULATOR_HOST=127.0.0.1:$PS_PORT
export PUBSUB_TOPIC=dates
export PUBSUB_SUBSCRIPTION=dates-loader
ENV
  echo "devstack: BigQuery emulator on 127.0.0.1:$BQ_REST_PORT behind $(cat "$DIR/fidelity.endpoint"), Pub/Sub fake on 127.0.0.1:$PS_PORT (project $PROJECT)"
  echo "devstack: now run: source .devstack/env"
}

case "${1:-}" in
up) up ;;
down) down; echo "devstack: stopped" ;;
*) echo "usage: dev/devstack.sh up|down" >&2; exit 2 ;;
esac
