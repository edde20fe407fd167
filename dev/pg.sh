#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster for tests, the demo and the bench.
#   dev/pg.sh start DIR PORT   initdb DIR (owned by the postgres user) and start it on 127.0.0.1:PORT
#   dev/pg.sh restart DIR      restart it (fast shutdown: open sessions are cut)
#   dev/pg.sh stop DIR         stop it and remove DIR
# initdb and postgres refuse to run as root, so when we are root they run as
# the "postgres" system user that Debian's package creates.
set -euo pipefail

bindir="$(pg_config --bindir 2>/dev/null || true)"
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
fi
[[ -x "$bindir/initdb" ]] || { echo "pg.sh: PostgreSQL server binaries (initdb) not found" >&2; exit 1; }

as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd="${1:-}"; dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: pg.sh start DIR PORT | restart DIR | stop DIR" >&2; exit 2; }

case "$cmd" in
start)
  port="${3:?port}"
  mkdir -p "$dir"
  [[ "$(id -u)" == 0 ]] && chown postgres: "$dir"
  chmod 700 "$dir"
  as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  ;;
restart)
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null \
    || { tail -20 "$dir/server.log" >&2; exit 1; }
  ;;
stop)
  if [[ -d "$dir/data" ]]; then
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
