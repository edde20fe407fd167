# Sourced by dev/test.sh, dev/demo.sh and dev/bench.sh: starts a throwaway
# PostgreSQL cluster and the BigQuery emulator on free loopback ports and
# stops both on exit. Sets PG_ADMIN_DSN, BQ_ENDPOINT, BQ_EMU_PROJECT, STACK_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pgbq-stack.XXXXXX")"
chmod 755 "$STACK_DIR"
BQ_EMU_PROJECT="${BQ_EMU_PROJECT:-pgbq-local}"
_bq_pid=""
_extra_pids=()

stack_stop() {
  set +e
  for p in "${_extra_pids[@]}"; do kill "$p" 2>/dev/null; done
  [[ -n "$_bq_pid" ]] && "$ROOT/dev/bqemu.sh" stop "$_bq_pid"
  "$ROOT/dev/pg.sh" stop "$STACK_DIR/pg" >/dev/null 2>&1
  rm -rf "$STACK_DIR"
}
trap stack_stop EXIT
trap 'exit 130' INT TERM

# stack_track PID: stop PID with the stack.
stack_track() { _extra_pids+=("$1"); }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stack_start() {
  echo "stack: installing the BigQuery emulator (first run only)" >&2
  "$ROOT/dev/bqemu.sh" install
  local pgport rest grpc
  pgport="$(free_port)"
  "$ROOT/dev/pg.sh" start "$STACK_DIR/pg" "$pgport"
  PG_ADMIN_DSN="host=127.0.0.1 port=$pgport user=postgres dbname=postgres sslmode=disable"
  read -r rest grpc < <("$ROOT/dev/bqemu.sh" free-ports)
  _bq_pid="$("$ROOT/dev/bqemu.sh" start "$rest" "$grpc" "$BQ_EMU_PROJECT" "$STACK_DIR/bqemu.log")"
  BQ_ENDPOINT="http://127.0.0.1:$rest/bigquery/v2/"
  echo "stack: PostgreSQL on 127.0.0.1:$pgport, BigQuery emulator on $BQ_ENDPOINT" >&2
}
