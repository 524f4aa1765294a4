#!/usr/bin/env bash
# Exactly once across crashes, as a drill: under pgbench load, DRILL_RUNS
# times (default 5; scripts/drill_kill.sh runs 20) SIGKILL the job at a random
# moment (during the copy or the stream), run it again, let it catch up with
# the load paused, and check that the shadow equals the source row for row.
# Finally cut over under load and check the TPC-B invariant.
. "$(dirname "$0")/lib.sh"
RUNS=${DRILL_RUNS:-5}

"$PGBIN/pgbench" -i -s 2 -q "$DB" >/dev/null 2>&1
write_job "$WORK/job.ini" pgbench_accounts aid 50000 "premake = 2" "[cutover]" "mode = manual" "reverse = false"
synced() { same_rows pgbench_accounts pgbench_accounts__pgshift; }

start_job
for run in $(seq 1 "$RUNS"); do
  start_load "$DB" 4 "$WORK/load"
  sleep "0.$(( RANDOM % 10 ))$(( RANDOM % 10 ))"
  sleep "$(( RANDOM % 3 ))"
  kill -9 "$JOB_PID"
  wait "$JOB_PID" 2>/dev/null || true
  phase=$(job_phase pgbench_accounts)
  start_job
  wait_for phase_is pgbench_accounts sync || { tail -20 "$WORK/run.out"; fail "run $run: no sync after restart"; }
  sleep 1
  stop_load "$WORK/load" >/dev/null || fail "run $run: pgbench saw failures"
  WAIT_SECS=90 wait_for synced || { tail -20 "$WORK/run.out"; fail "run $run: shadow differs from source after resume"; }
  echo "run $run: killed in phase '$phase', resumed, shadow equals source ($(q "SELECT changes_applied FROM pgshift.jobs") changes recorded)"
done
grep -q "resuming the forward change stream" "$WORK/run.out" || fail "no run resumed the stream"

start_load "$DB" 4 "$WORK/load"
sleep 1
"$PGSHIFT_BIN" cutover -c "$WORK/job.ini"
wait "$JOB_PID" || { tail -20 "$WORK/run.out"; fail "final run failed"; }
sleep 1
stop_load "$WORK/load" || fail "pgbench saw failures"
tpcb_invariant "$DB" || fail "TPC-B invariant broken after kills and resume"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'pgbench_accounts'")" p "partitioned"
assert_eq "$(q "SELECT count(*) FROM pgbench_accounts")" 200000 "row count"
