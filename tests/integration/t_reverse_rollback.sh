#!/usr/bin/env bash
# Reversible cutover under pgbench load (TPC-B, 4 clients):
#   cutover -> writes -> SIGKILL during the reverse stream and resume
#   -> rollback -> writes -> cutover again -> finalize.
# After each step the TPC-B invariant holds and the old and new tables match
# row for row; pgbench sees no failed transaction.
. "$(dirname "$0")/lib.sh"

"$PGBIN/pgbench" -i -s 2 -q "$DB" >/dev/null 2>&1
write_job "$WORK/job.ini" pgbench_accounts aid 50000 "premake = 2" "[cutover]" "mode = auto" "reverse = true"

start_load "$DB" 4 "$WORK/load"
sleep 1
start_job
wait_for phase_is pgbench_accounts reverse || { tail -30 "$WORK/run.out"; fail "no cutover"; }
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'pgbench_accounts'")" p "partitioned after cutover"
sleep 2
pause_and_compare "after cutover" pgbench_accounts__pgshift_old

# SIGKILL while streaming back; run again resumes the reverse stream.
kill -9 "$JOB_PID"; wait "$JOB_PID" 2>/dev/null || true
sleep 1
start_job
wait_for grep -q "resuming the reverse" "$WORK/run.out" || fail "reverse stream not resumed"
sleep 2
pause_and_compare "after a kill in the reverse stream" pgbench_accounts__pgshift_old

"$PGSHIFT_BIN" rollback -c "$WORK/job.ini" | tee -a "$WORK/rollback.out"
assert_eq "$(job_phase pgbench_accounts)" sync "phase after rollback"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'pgbench_accounts'")" r "plain table live after rollback"
assert_eq "$(q "SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'pgbench_accounts'::regclass AND indisprimary")" pgbench_accounts_pkey "original PK name back"
sleep 2
pause_and_compare "after rollback" pgbench_accounts__pgshift

"$PGSHIFT_BIN" cutover -c "$WORK/job.ini"
wait_for phase_is pgbench_accounts reverse || { tail -30 "$WORK/run.out"; fail "no second cutover"; }
sleep 2
pause_and_compare "after the second cutover" pgbench_accounts__pgshift_old

"$PGSHIFT_BIN" finalize -c "$WORK/job.ini"
wait "$JOB_PID" || { tail -20 "$WORK/run.out"; fail "run did not end cleanly after finalize"; }
stop_load "$WORK/load" || fail "pgbench saw failures"
tpcb_invariant "$DB" || fail "TPC-B invariant broken at the end"
assert_eq "$(job_phase pgbench_accounts)" done "phase after finalize"
assert_eq "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 0 "slots after finalize"
assert_eq "$(q "SELECT count(*) FROM pg_publication")" 0 "publications after finalize"
assert_eq "$(q "SELECT count(*) FROM pg_class WHERE relname = 'pgbench_accounts__pgshift_old'")" 1 "old table kept"
assert_eq "$(q "SELECT swaps FROM pgshift.jobs")" 3 "swaps recorded"
grep "source locked\|rolled back" "$WORK/run.out"
