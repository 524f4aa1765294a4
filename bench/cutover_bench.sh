#!/usr/bin/env bash
# Cutover benchmark: under pgbench TPC-B load (-c 4), SWAPS swaps (default 20:
# cutover and rollback alternately, the same protocol both ways) of
# pgbench_accounts. Reports the time the source was write-blocked per swap
# (lock wait + hold, from pgshift's log), p50 and p99, pgbench's failed
# transactions, and the worst transaction latency pgbench saw. A swap that
# needed several attempts also blocked writes during the failed ones: the
# longest single attempt per swap is reported too.
# Usage: bench/cutover_bench.sh [SWAPS] [SCALE]   (needs build/pgshift, or PGSHIFT_BIN;
#        LOCK_TIMEOUT_MS, default 500, is [cutover] lock_timeout_ms)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PGSHIFT_BIN:-$ROOT/build/pgshift}
SWAPS=${1:-20}
SCALE=${2:-10}
STATE=$(mktemp -d /tmp/pgshift-cutbench.XXXXXX)
trap '"$ROOT/scripts/pgcluster.sh" stop "$STATE/cluster" >/dev/null; rm -rf "$STATE"' EXIT
"$ROOT/scripts/pgcluster.sh" start "$STATE/cluster" >/dev/null
# shellcheck disable=SC1091
. "$STATE/cluster/env"
export PGDATABASE=postgres
"$PGBIN/pgbench" -i -s "$SCALE" -q >/dev/null 2>&1
cat >"$STATE/job.ini" <<INI
[source]
dsn = host=$PGHOST port=$PGPORT dbname=postgres user=$PGUSER
table = pgbench_accounts
[partitioning]
column = aid
interval = 100000
[cutover]
mode = manual
lock_timeout_ms = ${LOCK_TIMEOUT_MS:-500}
max_lag_bytes = 64kB
INI
q() { psql -X -At -c "$1"; }
phase() { q "SELECT phase FROM pgshift.jobs" 2>/dev/null || true; }
wait_phase() { until [ "$(phase)" = "$1" ]; do sleep 0.2; done; }

"$BIN" run -c "$STATE/job.ini" >"$STATE/run.out" 2>&1 &
RUN=$!
wait_phase sync
cd "$STATE"
# A fixed duration that outlasts the swaps: a background pgbench in a
# non-interactive shell ignores SIGINT, so it is not stopped early.
DURATION=$((10 + SWAPS * 5))
"$PGBIN/pgbench" -n -c 4 -j 2 -T "$DURATION" -l --log-prefix="$STATE/txn" postgres >"$STATE/pgbench.out" 2>&1 &
PGB=$!
sleep 5
for i in $(seq 1 "$SWAPS"); do
  if [ $((i % 2)) = 1 ]; then
    "$BIN" cutover -c "$STATE/job.ini" >/dev/null
    wait_phase reverse
  else
    "$BIN" rollback -c "$STATE/job.ini" >/dev/null
  fi
  sleep 2
done
wait "$PGB" || true
"$BIN" cutover -c "$STATE/job.ini" >/dev/null 2>&1 || true
[ "$(phase)" = reverse ] || wait_phase reverse
"$BIN" finalize -c "$STATE/job.ini" >/dev/null
wait "$RUN"

grep -oE 'was locked for [0-9.]+ ms' "$STATE/run.out" | awk '{print $4}' >"$STATE/locks"
n=$(wc -l <"$STATE/locks")
p50=$(sort -n "$STATE/locks" | awk -v n="$n" 'NR == int((n + 1) / 2) {print}')
p99=$(sort -n "$STATE/locks" | awk -v n="$n" 'NR == (int(n * 0.99 + 0.999999) > n ? n : int(n * 0.99 + 0.999999)) {print}')
max=$(sort -n "$STATE/locks" | tail -1)
grep -oE 'longest attempt [0-9.]+ ms' "$STATE/run.out" | awk '{print $3}' | sort -n >"$STATE/longest"
longest_p99=$(awk -v n="$n" 'NR == (int(n * 0.99 + 0.999999) > n ? n : int(n * 0.99 + 0.999999)) {print}' "$STATE/longest")
retries=$(grep -c 'retrying in' "$STATE/run.out" || true)
# Hold: from the grant to the end of COMMIT (barrier, swap, commit), the part
# that does not depend on how long other transactions keep the table.
grep -oE 'locked for [0-9.]+ ms .*lock wait [0-9.]+' "$STATE/run.out" |
  awk '{print $3 - $NF}' | sort -n >"$STATE/hold"
hold_p50=$(awk -v n="$n" 'NR == int((n + 1) / 2) {printf "%.1f", $1}' "$STATE/hold")
hold_max=$(tail -1 "$STATE/hold")
failed=$(cat "$STATE"/txn* | awk '$6 == "failed" || $3 == "failed" {f++} END {print f + 0}')
txns=$(cat "$STATE"/txn* | wc -l)
worst_ms=$(cat "$STATE"/txn* | awk '{if ($3 + 0 > m) m = $3 + 0} END {printf "%.1f", m / 1000}')
aborted=$(grep -c 'aborted' "$STATE/pgbench.out" || true)
echo "swaps: $n (cutover and rollback alternately), pgbench -c 4 TPC-B at scale $SCALE"
echo "source write-blocked per swap (lock wait + hold): p50 ${p50} ms, p99 ${p99} ms, max ${max} ms"
echo "hold after the lock was granted (barrier + swap + commit): p50 ${hold_p50} ms, max ${hold_max} ms"
echo "longest single attempt per swap (failed attempts too): p99 ${longest_p99} ms, max $(tail -1 "$STATE/longest") ms; failed attempts: $retries"
echo "pgbench: $txns transactions, $failed failed, $aborted aborted clients, worst transaction latency ${worst_ms} ms"
echo "all swaps (ms): $(tr '\n' ' ' <"$STATE/locks")"
echo "where the time went in swaps over 100 ms, and warnings from the lock loop:"
grep -E 'was locked for [0-9]{3,}|swap statement took|retrying in|lock_timeout in swap' "$STATE/run.out" | cut -c1-400 || true
