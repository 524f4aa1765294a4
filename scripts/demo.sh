#!/usr/bin/env bash
# The main job, end to end, on a throwaway local PostgreSQL cluster:
# pgbench -i -s 20, then while pgbench (TPC-B, 4 clients) writes, convert
# pgbench_accounts (RANGE on aid; after the automatic cutover the reverse
# stream keeps the old table current until `pgshift finalize`) and
# pgbench_history (RANGE on mtime, 1-minute partitions, REPLICA IDENTITY FULL,
# no reverse stream) with automatic cutover. Then check the
# TPC-B invariant, that both tables are partitioned, that the old tables are
# kept, and that pgbench saw no failed transaction. Exits non-zero if any
# check fails. Installs missing packages and builds first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SCALE=${SCALE:-20}
scripts/deps.sh
scripts/build.sh "$ROOT/build" >/dev/null
PGSHIFT="$ROOT/build/pgshift"
STATE=$(mktemp -d /tmp/pgshift-demo.XXXXXX)
cleanup() {
  [ -n "${LOAD_PID:-}" ] && { touch "$STATE/load/stop"; wait "$LOAD_PID" 2>/dev/null || true; }
  scripts/pgcluster.sh stop "$STATE/cluster" || true
  rm -rf "$STATE"
}
trap cleanup EXIT

scripts/pgcluster.sh start "$STATE/cluster"
# shellcheck disable=SC1091
. "$STATE/cluster/env"
# shellcheck disable=SC1091
. scripts/lib/load.sh
export PGDATABASE=postgres

echo "== pgbench -i -s $SCALE"
"$PGBIN/pgbench" -i -s "$SCALE" -q postgres 2>&1 | tail -1
psql -X -q -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL"

cat >"$STATE/accounts.ini" <<INI
[source]
dsn = host=$PGHOST port=$PGPORT dbname=postgres user=$PGUSER
table = public.pgbench_accounts
[partitioning]
column = aid
interval = 250000
premake = 2
[copy]
workers = 2
[cutover]
mode = auto
lock_timeout_ms = 500
reverse = true
INI
cat >"$STATE/history.ini" <<INI
[source]
dsn = host=$PGHOST port=$PGPORT dbname=postgres user=$PGUSER
table = public.pgbench_history
[partitioning]
column = mtime
interval = 1 minute
premake = 30
default_partition = true
[cutover]
mode = auto
reverse = false
INI

echo "== starting write load: pgbench -c 4 (TPC-B)"
start_load postgres 4 "$STATE/load"
sleep 5
echo "== plan for pgbench_accounts"
"$PGSHIFT" plan -c "$STATE/accounts.ini" | sed -n '/^Steps:/,/^DDL before/p'
echo "== converting pgbench_accounts (cutover, then the reverse stream until finalize)"
"$PGSHIFT" run -c "$STATE/accounts.ini" >"$STATE/accounts.out" 2>&1 &
RUN_PID=$!
until [ "$(psql -X -At -c "SELECT phase FROM pgshift.jobs WHERE job_name = 'pgbench_accounts'" 2>/dev/null)" = reverse ]; do
  kill -0 "$RUN_PID" 2>/dev/null || { cat "$STATE/accounts.out"; echo "FAIL: the accounts job ended"; exit 1; }
  sleep 1
done
grep -v '^20..-.* info' "$STATE/accounts.out" | grep -v '  PASS  '
sleep 3
"$PGSHIFT" status -c "$STATE/accounts.ini"
echo "== finalize pgbench_accounts (the old table is kept)"
"$PGSHIFT" finalize -c "$STATE/accounts.ini"
wait "$RUN_PID" || { cat "$STATE/accounts.out"; echo "FAIL: the accounts job failed"; exit 1; }
echo "== converting pgbench_history"
"$PGSHIFT" run -c "$STATE/history.ini" | tee "$STATE/history.out"
sleep 5
echo "== stopping the write load"
load_ok=1
stop_load "$STATE/load" >"$STATE/load.out" || load_ok=0
cat "$STATE/load.out"
[ $load_ok = 1 ] || { echo "FAIL: pgbench saw failed transactions"; exit 1; }

echo "== checks"
ok=1
check() { if eval "$2"; then echo "  ok    $1"; else echo "  FAIL  $1"; ok=0; fi; }
q() { psql -X -At -c "$1"; }
check "TPC-B invariant (sum abalance = bbalance = tbalance = delta)" "tpcb_invariant postgres >/dev/null"
check "pgbench_accounts is partitioned" "[ \"\$(q \"SELECT relkind FROM pg_class WHERE relname = 'pgbench_accounts'\")\" = p ]"
check "pgbench_history is partitioned" "[ \"\$(q \"SELECT relkind FROM pg_class WHERE relname = 'pgbench_history'\")\" = p ]"
check "old tables kept as __pgshift_old" "[ \"\$(q \"SELECT count(*) FROM pg_class WHERE relname IN ('pgbench_accounts__pgshift_old', 'pgbench_history__pgshift_old')\")\" = 2 ]"
check "no replication slot left" "[ \"\$(q 'SELECT count(*) FROM pg_replication_slots')\" = 0 ]"
check "no failed pgbench transaction" "grep -q ', 0 failed' $STATE/load.out"
tpcb_invariant postgres

echo "== summary"
for t in accounts history; do
  q "SELECT job_name || ': rows copied ' || rows_copied || ', changes applied ' || changes_applied ||
            ', peak lag ' || pg_size_pretty(peak_lag_bytes) || ', lock held ' || round(last_lock_ms::numeric, 1) || ' ms'
       FROM pgshift.jobs WHERE job_name = 'pgbench_$t'"
done
q "SELECT 'partitions: pgbench_accounts ' || (SELECT count(*) FROM pg_inherits WHERE inhparent = 'pgbench_accounts'::regclass) ||
          ', pgbench_history ' || (SELECT count(*) FROM pg_inherits WHERE inhparent = 'pgbench_history'::regclass)"
if [ $ok = 1 ]; then echo "demo: all checks passed"; else echo "demo: FAILED"; exit 1; fi
