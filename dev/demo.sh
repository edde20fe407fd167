#!/usr/bin/env bash
# make demo: the whole pipeline on a local stack. A throwaway PostgreSQL
# cluster gets activity_logs (about 1M rows over 30 days); some dates are
# synced first so sync_control has a history with gaps; then the planner
# plans, two loaders drain the subscription, every date is counted in both
# systems, and `planner status` ends it with its summary (finished %, rows,
# rows/s), read from sync_control alone. Everything it starts is stopped and removed at the end.
source "$(dirname "$0")/stack.sh"
cd "$ROOT"
ROWS="${DEMO_ROWS:-1000000}"
DAYS=30

step() { printf '\n== %s\n' "$*"; }

step "building"
mkdir -p "$STACK_DIR/bin"
go build -o "$STACK_DIR/bin/" ./planner ./loader ./dev/pstestd ./dev/bqquery
stack_start

step "seeding activity_logs: $ROWS rows over $DAYS days (the last one is today, up to 90 minutes ago)"
psql() { "$(pg_config --bindir)/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$PG_ADMIN_DSN" -c "CREATE DATABASE demo"
DEMO_DSN="${PG_ADMIN_DSN/dbname=postgres/dbname=demo}"
psql "$DEMO_DSN" <<SQL
CREATE TABLE activity_logs (
  id bigint PRIMARY KEY,
  user_id bigint NOT NULL,
  action text NOT NULL,
  path text,
  payload jsonb,
  ip inet,
  amount numeric(12,2),
  created_at timestamptz NOT NULL
);
CREATE INDEX activity_logs_created_at_id ON activity_logs (created_at, id);
-- Rows spread evenly from 29 days ago 00:00 UTC up to 90 minutes ago; ids rise with time.
-- (An open day is read up to now minus SYNC_FINISH_GRACE, 1h by default: newer rows
-- would wait for a later run.)
INSERT INTO activity_logs
SELECT g, g % 5000, (ARRAY['view','click','login','logout','purchase'])[1 + g % 5], '/page/' || (g % 300),
       jsonb_build_object('session', g % 9973, 'ok', g % 11 <> 0),
       ('10.' || (g % 200) || '.' || (g % 250) || '.' || (g % 240))::inet,
       CASE WHEN g % 3 = 0 THEN (g % 100000) / 100.0 END,
       date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '29 days'
         + (g - 1) * ((now() - interval '90 minutes' - (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '29 days')) / $ROWS)
FROM generate_series(1, $ROWS) g;
ANALYZE activity_logs;
SQL

PS_PORT="$(free_port)"
"$STACK_DIR/bin/pstestd" --port "$PS_PORT" --project "$BQ_EMU_PROJECT" --topic dates --subscription dates-loader >"$STACK_DIR/pstestd.log" 2>&1 &
stack_track $!
for _ in $(seq 1 100); do grep -q listening "$STACK_DIR/pstestd.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$STACK_DIR/pstestd.log" || { cat "$STACK_DIR/pstestd.log"; exit 1; }

export PG_DSN="$DEMO_DSN" BQ_PROJECT="$BQ_EMU_PROJECT" BQ_DATASET=pgbq_demo BQ_ENDPOINT="$BQ_ENDPOINT" \
  PUBSUB_EMULATOR_HOST="127.0.0.1:$PS_PORT" PUBSUB_TOPIC=dates PUBSUB_SUBSCRIPTION=dates-loader \
  SYNC_TABLE=activity_logs SYNC_CHUNK_SIZE="${DEMO_CHUNK_SIZE:-10000}" LOG_LEVEL=warn

step "planner migrate: datasets, sync_control and the destination table (once per deploy)"
"$STACK_DIR/bin/planner" migrate

step "a sync history with gaps: syncing some dates directly (loader --date)"
for offset in 29 28 27 26 25 24 23 22 18 17 16 15 10; do
  d="$(date -u -d "today - $offset days" +%F)"
  "$STACK_DIR/bin/loader" --date "$d" >>"$STACK_DIR/history.log"
  printf '%s ' "$d"
done
echo

step "planner --dry-run: what is missing, oldest first (gaps before new dates)"
"$STACK_DIR/bin/planner" --dry-run

step "planner: publishing one message per date"
"$STACK_DIR/bin/planner" 2>"$STACK_DIR/planner.log" || { cat "$STACK_DIR/planner.log"; exit 1; }

step "two loaders pull until the subscription is drained"
LOG_LEVEL=info "$STACK_DIR/bin/loader" --pull --exit-when-idle=10s >"$STACK_DIR/loader-1.log" &
l1=$!
LOG_LEVEL=info "$STACK_DIR/bin/loader" --pull --exit-when-idle=10s >"$STACK_DIR/loader-2.log" &
l2=$!
wait "$l1"; wait "$l2"
for i in 1 2; do
  printf 'loader %d: %s chunks staged, %s dates processed\n' "$i" \
    "$(grep -c '"chunk staged"' "$STACK_DIR/loader-$i.log" || true)" "$(grep -c '"date processed"' "$STACK_DIR/loader-$i.log" || true)"
done
echo "one chunk log line:"
grep -m1 '"chunk staged"' "$STACK_DIR/loader-1.log" "$STACK_DIR/loader-2.log" | head -1 | cut -d: -f2-

step "sync_control, as the original monitoring query shows it"
q="SELECT table_name, sync_date, is_finished, last_max_id, synced_at FROM pgbq_demo.sync_control WHERE table_name = 'activity_logs' ORDER BY sync_date DESC LIMIT 10"
echo "$q"
"$STACK_DIR/bin/bqquery" "$q" | column -t -s $'\t'
"$STACK_DIR/bin/planner" status --verify >"$STACK_DIR/status.txt" 2>>"$STACK_DIR/planner.log" || true

step "planner status --verify: per date, source rows and BigQuery rows counted now"
sed -n '/^recount /,$p' "$STACK_DIR/status.txt" | grep -v '^status:'
summary="$(grep '^status:' "$STACK_DIR/status.txt")" || { echo "demo: status failed"; cat "$STACK_DIR/planner.log"; exit 1; }
val() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
echo
echo "demo: dates=$(val dates "$summary") source_rows=$(val source_rows "$summary") bigquery_rows=$(val bigquery_rows "$summary") duplicates=$(val duplicates "$summary")"

step "planner status: the operator's view, from sync_control only (last dates and the summary)"
"$STACK_DIR/bin/planner" status >"$STACK_DIR/state.txt" 2>>"$STACK_DIR/planner.log" || { cat "$STACK_DIR/planner.log"; exit 1; }
head -2 "$STACK_DIR/state.txt"; grep -v '^summary:' "$STACK_DIR/state.txt" | tail -n 5
state="$(grep '^summary:' "$STACK_DIR/state.txt")"
echo "$state"
echo "demo: finished=$(val finished_pct "$state")% rows=$(val rows "$state") rows/s=$(val rows_per_s "$state")"
