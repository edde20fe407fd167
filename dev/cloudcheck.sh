#!/usr/bin/env bash
# make cloud-check: a throwaway PostgreSQL cluster, then dev/cloudcheck
# against the real BigQuery project named by BQ_PROJECT.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
[[ -n "${BQ_PROJECT:-}" ]] || { echo "cloud-check: set BQ_PROJECT to a project where you may create a scratch dataset" >&2; exit 2; }
dir="$(mktemp -d "${TMPDIR:-/tmp}/pgbq-cloudcheck.XXXXXX")"
chmod 755 "$dir"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
trap '"$ROOT/dev/pg.sh" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT
"$ROOT/dev/pg.sh" start "$dir/pg" "$port"
PG_DSN="host=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=disable" go run ./dev/cloudcheck
