#!/usr/bin/env bash
# dev/bqemu.sh — local BigQuery emulator (bqemulator, DuckDB-backed) for pgbq.
#
# Usage: dev/bqemu.sh <command> [args]
#   install                                   create/refresh $ROOT/.venv (idempotent; fast no-op when done)
#   start <rest_port> <grpc_port> <project> <logfile>
#                                             start an ephemeral emulator in the background, wait until
#                                             it is ready, print its PID on stdout
#   stop <pid>                                stop an emulator started by `start` (idempotent)
#   status <rest_port>                        exit 0 if an emulator answers /readyz on that port
#   free-ports                                print two free loopback TCP ports ("REST GRPC")
#   run [bqemulator args...]                  run the bqemulator CLI in the foreground, same environment
#   smoke                                     start on free ports, create a dataset/table, query, stop
#
# Environment:
#   BQEMU_VENV            virtualenv location (default: $ROOT/.venv)
#   BQEMU_PYTHON          interpreter used to create the venv (default: first of python3.11,
#                         python3.12, python3.13, python3 that is >= 3.11)
#   BQEMU_START_TIMEOUT   seconds `start` waits for readiness (default 60)
#   BQEMU_WATCH_PID       if set, `start` also spawns a watcher that stops the emulator
#                         when that PID exits (e.g. the test binary's PID), so a crashed
#                         test run leaks no emulator
#   BQEMU_* (others)      passed through to bqemulator itself (e.g. BQEMU_LOG_LEVEL=warning)
#
# Why it looks like this:
#   * bqemulator runs `INSTALL spatial; LOAD spatial` at startup and refuses to start if that
#     fails; DuckDB would download the extension from its own site, which is not reachable
#     here. So duckdb is pinned to a version that has its extensions packaged on the Python
#     package index (duckdb-extension-spatial / -avro, same version), and the extension files
#     are copied into a DuckDB extension directory under the venv. DuckDB derives that
#     directory from $HOME (~/.duckdb/extensions/v<ver>/<platform>/) and bqemulator has no
#     setting for it, so the emulator process (only) runs with HOME=$VENV/bqemu-home. An
#     already-installed extension makes `INSTALL` a no-op, so no network access happens.
#   * numpy is required at runtime (DuckDB's create_function needs it for the emulator's
#     built-in UDFs) but bqemulator 1.4.0 does not declare it.
#   * Every Python package is pinned with the sha256 of its wheels in dev/bqemu-requirements.txt
#     (resolved with Python 3.11 on linux x86_64; hashes for CPython 3.11-3.13), so a fresh
#     machine gets exactly the bytes this was verified with. The stamp holds the whole lock, so
#     changing it reinstalls. Packages an older stamp's install left in place at the pinned
#     version are kept as they are (pip checks hashes only of what it downloads).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BQEMU_VENV:-$ROOT/.venv}"
DUCKDB_VERSION="1.5.5"
DUCKDB_PLATFORM="linux_amd64"
EMU_HOME="$VENV/bqemu-home"
EXT_DIR="$EMU_HOME/.duckdb/extensions/v$DUCKDB_VERSION/$DUCKDB_PLATFORM"
STAMP="$VENV/.bqemu-stamp"
REQS="$ROOT/dev/bqemu-requirements.txt"
LOCKFILE="${TMPDIR:-/tmp}/bqemu-install-$(printf '%s' "$VENV" | cksum | cut -d' ' -f1).lock"
STAMP_FORMAT="bqemu-stamp 2"

# The hash-checked lock (see its header; dev/bqemu-lock.sh rewrites the hashes).
lock() { cat "$REQS"; }

log() { printf 'bqemu: %s\n' "$*" >&2; }
die() { printf 'bqemu: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^# Why it looks/p' "${BASH_SOURCE[0]}" | sed -e '/^# Why it looks/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

check_platform() {
  local sm
  sm="$(uname -s) $(uname -m)"
  [ "$sm" = "Linux x86_64" ] || die "only Linux x86_64 is supported (the packaged DuckDB extensions are $DUCKDB_PLATFORM builds); got: $sm"
}

py_ok() { # interpreter is CPython >= 3.11 and < 3.14
  "$1" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)' >/dev/null 2>&1
}

find_python() {
  local c
  if [ -n "${BQEMU_PYTHON:-}" ]; then
    py_ok "$BQEMU_PYTHON" || die "BQEMU_PYTHON=$BQEMU_PYTHON is not a Python 3.11-3.13 interpreter"
    printf '%s\n' "$BQEMU_PYTHON"; return 0
  fi
  for c in python3.11 python3.12 python3.13 python3; do
    if command -v "$c" >/dev/null 2>&1 && py_ok "$c"; then printf '%s\n' "$c"; return 0; fi
  done
  die "no Python 3.11-3.13 found (on Debian: apt-get install python3 python3-venv); or set BQEMU_PYTHON"
}

# Debian splits ensurepip (needed by `python -m venv`) into pythonX.Y-venv.
ensure_venv_support() {
  local py="$1" ver
  "$py" -c 'import ensurepip, venv' >/dev/null 2>&1 && return 0
  ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing python$ver-venv (ensurepip is missing)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$ver-venv" >&2
    "$py" -c 'import ensurepip, venv' >/dev/null 2>&1 && return 0
  fi
  die "$py cannot create virtualenvs (missing ensurepip); install python$ver-venv"
}

want_stamp() { # what the stamp must contain for the current pins
  printf '%s\nduckdb=%s platform=%s ext_dir=%s\n' "$STAMP_FORMAT" "$DUCKDB_VERSION" "$DUCKDB_PLATFORM" "$EXT_DIR"
  lock
}

installed() {
  [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/bqemulator" ] \
    && [ -f "$EXT_DIR/spatial.duckdb_extension" ] \
    && [ "$(cat "$STAMP")" = "$(want_stamp)" ]
}

do_install() {
  local py t0 py_ver name src dst
  installed && return 0
  t0=$SECONDS
  py="$(find_python)"
  py_ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  # Reuse an existing venv if its interpreter still works and is new enough.
  if [ -e "$VENV" ] && ! py_ok "$VENV/bin/python"; then
    log "recreating $VENV (its python is missing, broken or older than 3.11)"
    rm -rf "$VENV"
  fi
  rm -f "$STAMP"
  if [ ! -x "$VENV/bin/python" ]; then
    ensure_venv_support "$py"
    log "creating virtualenv $VENV with $py ($py_ver)"
    "$py" -m venv "$VENV"
  fi
  # Keep the venv out of git even without a .gitignore entry (Python >= 3.13 does this itself).
  [ -f "$VENV/.gitignore" ] || printf '# created by dev/bqemu.sh\n*\n' >"$VENV/.gitignore"
  rm -f "$VENV/bqemu-requirements.txt" # where stamp format 1 kept its copy of the pins
  log "installing pinned, hash-checked packages (bqemulator 1.4.0, duckdb $DUCKDB_VERSION + spatial/avro extensions)"
  # --require-hashes: pip refuses any file whose sha256 is not in the lock, and any dependency
  # the lock does not pin. --only-binary: no package's build code runs here.
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --no-input -q \
    --require-hashes --only-binary=:all: -r "$REQS" >&2

  # Put the packaged extension binaries where DuckDB looks for installed extensions.
  mkdir -p "$EXT_DIR"
  for name in spatial avro; do
    src="$("$VENV/bin/python" -c '
import importlib.util, pathlib, sys
name, ver = sys.argv[1], sys.argv[2]
spec = importlib.util.find_spec("duckdb_extension_" + name)
base = pathlib.Path(next(iter(spec.submodule_search_locations)))
print(base / "extensions" / ("v" + ver) / (name + ".duckdb_extension"))
' "$name" "$DUCKDB_VERSION")"
    [ -f "$src" ] || die "extension file not found: $src"
    dst="$EXT_DIR/$name.duckdb_extension"
    if [ ! "$dst" -ef "$src" ]; then # hard link when possible (same file system), else copy
      rm -f "$dst" "$dst.tmp"
      ln "$src" "$dst" 2>/dev/null || { cp "$src" "$dst.tmp" && mv -f "$dst.tmp" "$dst"; }
    fi
  done

  # Check that DuckDB, run the way the emulator runs it, loads them without any download.
  HOME="$EMU_HOME" "$VENV/bin/python" - "$DUCKDB_VERSION" >&2 <<'PY'
import sys
import duckdb
want = sys.argv[1]
if duckdb.__version__ != want:
    sys.exit(f"duckdb {duckdb.__version__} installed, expected {want}")
con = duckdb.connect(":memory:")
con.execute("SET autoinstall_known_extensions = false")
for ext in ("spatial", "avro"):
    con.execute(f"INSTALL {ext}")
    con.execute(f"LOAD {ext}")
assert con.execute("SELECT ST_AsText(ST_Point(1, 2))").fetchone()[0] == "POINT (1 2)"
PY
  want_stamp >"$STAMP.tmp" && mv -f "$STAMP.tmp" "$STAMP"
  log "installed in $((SECONDS - t0))s"
}

cmd_install() {
  check_platform
  [ -f "$REQS" ] || die "lock file missing: $REQS"
  installed && return 0
  mkdir -p "$(dirname "$LOCKFILE")"
  if command -v flock >/dev/null 2>&1; then
    # The lock fd lives only in this subshell, so background processes never inherit it.
    ( flock 9; do_install ) 9>"$LOCKFILE"
  else
    do_install
  fi
}

# Python helper for readiness / port checks (no curl needed; ignores *_proxy variables).
emu_py() {
  "$VENV/bin/python" - "$@" <<'PY'
import os, socket, sys, time, urllib.request

def port_busy(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False

def ready(port):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except Exception:
        return False

mode = sys.argv[1]
if mode == "busy":          # busy PORT...: exit 1 and name the first port in use
    for p in map(int, sys.argv[2:]):
        if port_busy(p):
            print(p)
            sys.exit(1)
elif mode == "wait":        # wait PID PORT TIMEOUT
    pid, port, timeout = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            print("process exited before becoming ready")
            sys.exit(1)
        if ready(port):
            sys.exit(0 if alive(pid) else 1)
        time.sleep(0.1)
    print(f"not ready after {timeout:g}s")
    sys.exit(1)
elif mode == "ready":       # ready PORT
    sys.exit(0 if ready(int(sys.argv[2])) else 1)
elif mode == "free":        # free: two free loopback ports
    socks = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()
PY
}

is_emu_pid() {
  local pid="$1"
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'bqemulator start'
}

valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

cmd_start() {
  [ $# -eq 4 ] || die "usage: $0 start <rest_port> <grpc_port> <project> <logfile>"
  local rest="$1" grpc="$2" project="$3" logfile="$4" pid busy why timeout t0 ms
  valid_port "$rest" || die "bad rest port: $rest (must be 1-65535; use free-ports to pick)"
  valid_port "$grpc" || die "bad grpc port: $grpc (must be 1-65535; use free-ports to pick)"
  [ "$rest" != "$grpc" ] || die "rest and grpc ports must differ"
  [ -n "$project" ] || die "empty project id"
  timeout="${BQEMU_START_TIMEOUT:-60}"
  cmd_install
  mkdir -p "$(dirname "$logfile")"
  if ! busy="$(emu_py busy "$rest" "$grpc")"; then
    die "port $busy on 127.0.0.1 is already in use"
  fi
  t0=$(date +%s%N)
  (
    cd "$EMU_HOME"
    export HOME="$EMU_HOME"
    exec "$VENV/bin/bqemulator" start --ephemeral \
      --rest-host 127.0.0.1 --rest-port "$rest" \
      --grpc-host 127.0.0.1 --grpc-port "$grpc" \
      --project "$project"
  ) </dev/null >"$logfile" 2>&1 &
  pid=$!
  if ! why="$(emu_py wait "$pid" "$rest" "$timeout")"; then
    kill -TERM "$pid" 2>/dev/null || true
    sleep 1
    kill -KILL "$pid" 2>/dev/null || true
    log "emulator failed to start: $why; last lines of $logfile:"
    tail -n 30 "$logfile" >&2 || true
    exit 1
  fi
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  log "emulator pid $pid ready on 127.0.0.1:$rest (grpc $grpc, project $project) in ${ms}ms"
  if [ -n "${BQEMU_WATCH_PID:-}" ]; then
    local w="$BQEMU_WATCH_PID"
    (
      while kill -0 "$w" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
      if is_emu_pid "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
    ) </dev/null >/dev/null 2>&1 &
  fi
  printf '%s\n' "$pid"
}

cmd_stop() {
  if [ $# -ne 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then die "usage: $0 stop <pid>"; fi
  local pid="$1" _
  if ! is_emu_pid "$pid"; then
    return 0 # already gone (or not ours): nothing to do
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    is_emu_pid "$pid" || return 0
    sleep 0.1
  done
  log "pid $pid did not exit after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_status() {
  if [ $# -ne 1 ] || ! valid_port "$1"; then die "usage: $0 status <rest_port>"; fi
  [ -x "$VENV/bin/python" ] || exit 1
  emu_py ready "$1"
}

cmd_free_ports() {
  cmd_install
  emu_py free
}

cmd_run() {
  cmd_install
  mkdir -p "$EMU_HOME"
  HOME="$EMU_HOME" exec "$VENV/bin/bqemulator" "$@"
}

cmd_smoke() {
  local ports rest grpc logfile pid rc=0
  cmd_install
  ports="$(emu_py free)"; rest="${ports% *}"; grpc="${ports#* }"
  logfile="$(mktemp "${TMPDIR:-/tmp}/bqemu-smoke.XXXXXX.log")"
  pid="$(cmd_start "$rest" "$grpc" smoke-project "$logfile")"
  "$VENV/bin/python" - "$rest" <<'PY' || rc=$?
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/bigquery/v2/projects/smoke-project"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def call(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with opener.open(req, timeout=30) as r:
        return json.load(r)
call("/datasets", {"datasetReference": {"projectId": "smoke-project", "datasetId": "ds"}})
call("/datasets/ds/tables", {"tableReference": {"projectId": "smoke-project", "datasetId": "ds", "tableId": "t"},
                            "schema": {"fields": [{"name": "x", "type": "INT64"}]}})
call("/datasets/ds/tables/t/insertAll", {"rows": [{"json": {"x": 41}}]})
r = call("/queries", {"query": "SELECT x + 1 AS y FROM ds.t", "useLegacySql": False})
assert r.get("jobComplete") and not r.get("errors"), r
assert r["rows"][0]["f"][0]["v"] == "42", r
print("bqemu smoke: ok")
PY
  cmd_stop "$pid"
  if [ "$rc" -ne 0 ]; then tail -n 30 "$logfile" >&2; fi
  rm -f "$logfile"
  return "$rc"
}

main() {
  [ $# -ge 1 ] || usage
  local cmd="$1"; shift
  case "$cmd" in
    install) [ $# -eq 0 ] || die "usage: $0 install"; cmd_install ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    free-ports) cmd_free_ports ;;
    run) cmd_run "$@" ;;
    smoke) cmd_smoke ;;
    -h|--help|help) usage ;;
    *) log "unknown command: $cmd"; usage ;;
  esac
}

main "$@"
