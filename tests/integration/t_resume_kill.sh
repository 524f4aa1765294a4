#!/usr/bin/env bash
# Exactly once across crashes: under pgbench load, SIGKILL the job while it
# streams, run it again (it resumes from its replication origin's progress),
# repeat, then cut over. The TPC-B invariant must hold and no row may be lost
# or applied twice.
. "$(dirname "$0")/lib.sh"

"$PGBIN/pgbench" -i -s 2 -q "$DB" >/dev/null 2>&1
write_job "$WORK/job.ini" pgbench_accounts aid 50000 "premake = 2" "[cutover]" "mode = manual"
start_load "$DB" 4 "$WORK/load"
sleep 1
for round in 1 2 3; do
  "$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run.$round.out" 2>&1 &
  pid=$!
  wait_for phase_is pgbench_accounts sync || { cat "$WORK/run.$round.out"; fail "no sync in round $round"; }
  sleep "$(( (RANDOM % 3) + 1 )).$(( RANDOM % 10 ))"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  echo "round $round: killed during sync after $(q "SELECT changes_applied FROM pgshift.jobs") recorded changes"
done
grep -q "resuming the change stream" "$WORK/run.2.out" || fail "round 2 did not resume"
"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run.final.out" 2>&1 &
pid=$!
wait_for phase_is pgbench_accounts sync
sleep 2
"$PGSHIFT_BIN" cutover -c "$WORK/job.ini"
wait "$pid" || { cat "$WORK/run.final.out"; fail "final run failed"; }
sleep 2
stop_load "$WORK/load" || fail "pgbench saw failures"
tpcb_invariant "$DB" || fail "TPC-B invariant broken after kills and resume"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'pgbench_accounts'")" p "partitioned"
assert_eq "$(q "SELECT count(*) FROM pgbench_accounts")" 200000 "row count"
