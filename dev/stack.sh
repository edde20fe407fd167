# Sourced by dev/test.sh, dev/demo.sh, dev/bench.sh and dev/chaos.sh: starts a
# throwaway PostgreSQL cluster, the BigQuery emulator, and the BigQuery
# fidelity proxy (internal/bqfidelity) in front of it, on free loopback ports,
# and stops them on exit. Sets PG_ADMIN_DSN, BQ_ENDPOINT (the proxy),
# BQ_EMULATOR_ENDPOINT (the raw emulator), BQ_EMU_PROJECT, STACK_DIR.
#   PGBQ_JOB_LATENCY  how long each BigQuery job is PENDING then RUNNING
#                     before it takes effect (Go duration, default 100ms)
#   PGBQ_STREAMING_VISIBILITY_DELAY  how long streamed rows stay invisible to
#                     queries (Go duration, default 0s: at once)
#   PGBQ_CANCEL_LOSES the share (0..1) of job cancels the job wins (default 0)
#   PGBQ_FIDELITY=0   no proxy: BQ_ENDPOINT is the raw emulator (to compare)
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
  BQ_EMULATOR_ENDPOINT="http://127.0.0.1:$rest/bigquery/v2/"
  BQ_ENDPOINT="$BQ_EMULATOR_ENDPOINT"
  echo "stack: PostgreSQL on 127.0.0.1:$pgport, BigQuery emulator on $BQ_EMULATOR_ENDPOINT" >&2
  if [[ "${PGBQ_FIDELITY:-1}" != "0" ]]; then
    fidelity_start
  fi
}

# fidelity_start puts the BigQuery fidelity proxy in front of the emulator:
# BQ_ENDPOINT then points at the proxy.
fidelity_start() {
  local latency="${PGBQ_JOB_LATENCY:-100ms}" epfile="$STACK_DIR/bqfidelity.endpoint"
  (cd "$ROOT" && go build -o "$STACK_DIR/bqfidelity" ./dev/bqfidelity)
  "$STACK_DIR/bqfidelity" --emulator "$BQ_EMULATOR_ENDPOINT" --job-latency "$latency" \
    --streaming-visibility-delay "${PGBQ_STREAMING_VISIBILITY_DELAY:-0s}" --cancel-loses "${PGBQ_CANCEL_LOSES:-0}" \
    --endpoint-file "$epfile" >"$STACK_DIR/bqfidelity.log" 2>&1 &
  stack_track $!
  for _ in $(seq 1 100); do [[ -s "$epfile" ]] && break; sleep 0.1; done
  [[ -s "$epfile" ]] || { cat "$STACK_DIR/bqfidelity.log" >&2; echo "stack: the fidelity proxy did not start" >&2; exit 1; }
  BQ_ENDPOINT="$(cat "$epfile")"
  echo "stack: BigQuery fidelity proxy on $BQ_ENDPOINT (job latency $latency)" >&2
}
