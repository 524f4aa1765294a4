#!/usr/bin/env bash
# SIGKILL around the swap, under pgbench TPC-B load (4 clients), using the
# pause points of src/test_hook.h:
#  1. inside the swap transaction (PGSHIFT_TEST_PAUSE_AT=swap): the swap never
#     commits, so the catalog and pgshift.jobs both still say "plain table live,
#     phase sync"; `run` again drops the stale reverse stream, resumes the
#     forward stream and, the request still standing, cuts over;
#  2. right after the swap committed (PGSHIFT_TEST_PAUSE_AT=after_swap): both
#     say "partitioned table live, phase reverse"; `run` again drops the stale
#     forward stream and resumes the reverse stream;
#     the foreign key pgbench_accounts.bid -> pgbench_branches, whose root
#     constraint is added after the swap commits, is added by the restart;
#  then a rollback and finalize. After each restart the TPC-B invariant holds
#  and the two tables match row for row. (A kill during the reverse stream
#  itself is in t_reverse_rollback.sh.)
. "$(dirname "$0")/lib.sh"

"$PGBIN/pgbench" -i -s 2 -q "$DB" >/dev/null 2>&1
q "ALTER TABLE pgbench_accounts ADD CONSTRAINT accounts_bid_fk FOREIGN KEY (bid) REFERENCES pgbench_branches" >/dev/null
fk_valid() { q "SELECT coalesce(bool_and(convalidated)::text, 'missing') FROM pg_constraint WHERE conrelid = 'pgbench_accounts'::regclass AND conname = 'accounts_bid_fk'"; }
write_job "$WORK/job.ini" pgbench_accounts aid 50000 "premake = 2" "[cutover]" "mode = manual" "reverse = true"
kill_job() {
  kill -9 "$JOB_PID"
  wait "$JOB_PID" 2>/dev/null || true
}
relkind() { q "SELECT relkind FROM pg_class WHERE relname = '$1'"; }
slots() { q "SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots WHERE database = '$DB'"; }

start_load "$DB" 4 "$WORK/load"
start_job swap
wait_for phase_is pgbench_accounts sync || { tail -20 "$WORK/run.out"; fail "no sync"; }
FWD_SLOT=$(slots)
sleep 1

# 1. Killed inside the swap transaction.
"$PGSHIFT_BIN" cutover -c "$WORK/job.ini" >/dev/null
wait_for grep -q "pausing .* at 'swap'" "$WORK/run.out" || { tail -20 "$WORK/run.out"; fail "never reached the swap"; }
assert_eq "$(q "SELECT count(*) FROM pg_locks WHERE relation = 'pgbench_accounts'::regclass AND mode = 'AccessExclusiveLock' AND granted")" 1 "swap holds the lock"
[ "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" = 2 ] || fail "reverse slot not prepared before the swap"
kill_job
lock_released() { [ "$(q "SELECT count(*) FROM pg_locks WHERE relation = 'pgbench_accounts'::regclass AND mode = 'AccessExclusiveLock'")" = 0 ]; }
wait_for lock_released || fail "the killed swap's lock was not released"
assert_eq "$(job_phase pgbench_accounts)" sync "phase after a kill inside the swap"
assert_eq "$(relkind pgbench_accounts)" r "plain table still live"
assert_eq "$(relkind pgbench_accounts__pgshift)" p "shadow still the shadow"
echo "1. killed inside the swap: not committed; phase sync, plain table live"

# Run again: the stale reverse stream goes, the forward stream resumes, and the
# standing request cuts over; pause right after that commit.
start_job after_swap
wait_for grep -q "pausing .* at 'after_swap'" "$WORK/run.out" || { tail -20 "$WORK/run.out"; fail "no cutover after the restart"; }
grep -q "resuming the forward change stream" "$WORK/run.out" || fail "forward stream not resumed"

# 2. Killed right after the swap committed.
assert_eq "$(job_phase pgbench_accounts)" reverse "phase once the swap committed"
assert_eq "$(relkind pgbench_accounts)" p "partitioned table live"
assert_eq "$(relkind pgbench_accounts__pgshift_old)" r "old table kept"
assert_eq "$(fk_valid)" missing "root foreign key before the after-commit statements"
kill_job
start_job
wait_for grep -q "resuming the reverse" "$WORK/run.out" || { tail -20 "$WORK/run.out"; fail "reverse stream not resumed"; }
grep -q "stopped before its after-commit statements ran" "$WORK/run.out" || fail "pending after-commit statements not noticed"
assert_eq "$(fk_valid)" true "root foreign key added and valid after the restart"
assert_eq "$(q "SELECT after_swap_pending FROM pgshift.jobs")" "" "after-commit flag cleared"
one_slot() { [ "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" = 1 ]; }
WAIT_SECS=30 wait_for one_slot || fail "stale forward slot not dropped: $(slots)"
[ "$(slots)" != "$FWD_SLOT" ] || fail "the remaining slot is the forward one"
sleep 2
pause_and_compare "2. killed after the swap committed, resumed" pgbench_accounts__pgshift_old

"$PGSHIFT_BIN" rollback -c "$WORK/job.ini" >/dev/null || { tail -20 "$WORK/run.out"; fail "rollback failed"; }
assert_eq "$(relkind pgbench_accounts)" r "plain table live after rollback"
fk_is_valid() { [ "$(fk_valid)" = true ]; }
wait_for fk_is_valid || fail "foreign key not back and validated on the plain table after the rollback: $(fk_valid)"
sleep 2
pause_and_compare "rolled back after the kills" pgbench_accounts__pgshift
"$PGSHIFT_BIN" cutover -c "$WORK/job.ini" >/dev/null
wait_for phase_is pgbench_accounts reverse || { tail -20 "$WORK/run.out"; fail "no cutover after the rollback"; }
"$PGSHIFT_BIN" finalize -c "$WORK/job.ini" >/dev/null
wait "$JOB_PID" || { tail -20 "$WORK/run.out"; fail "run did not end cleanly after finalize"; }
stop_load "$WORK/load" || fail "pgbench saw failures"
tpcb_invariant "$DB" || fail "TPC-B invariant broken at the end"
assert_eq "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 0 "slots after finalize"
assert_eq "$(q "SELECT swaps FROM pgshift.jobs")" 3 "swaps recorded (the killed one not counted)"
