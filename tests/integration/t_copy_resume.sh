#!/usr/bin/env bash
# A copy killed with SIGKILL under pgbench write load resumes from the chunks
# it committed: the second run reconciles those chunks with a new snapshot,
# copies only the others, and after catch-up the shadow equals the source row
# for row.
. "$(dirname "$0")/lib.sh"

"$PGBIN/pgbench" -i -s 5 -q "$DB" >/dev/null 2>&1
write_job "$WORK/job.ini" pgbench_accounts aid 100000 "premake = 1" \
  "[copy]" "workers = 2" "chunk_rows = 5000" "[cutover]" "mode = manual" "reverse = false"
chunks_done() { q "SELECT count(*) FILTER (WHERE done) FROM pgshift.copy_chunks" 2>/dev/null || echo 0; }

start_load "$DB" 4 "$WORK/load"
"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run1.out" 2>&1 &
JOB_PID=$!
for _ in $(seq 1 600); do
  [ "$(chunks_done)" -ge 8 ] && break
  sleep 0.05
done
kill -9 "$JOB_PID"
wait "$JOB_PID" 2>/dev/null || true
assert_eq "$(job_phase pgbench_accounts)" copy "phase after SIGKILL"
done_before=$(chunks_done)
total=$(q "SELECT count(*) FROM pgshift.copy_chunks")
[ "$done_before" -lt "$total" ] || fail "the copy finished before the kill ($done_before of $total chunks)"
echo "killed with $done_before of $total chunks committed"

"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run2.out" 2>&1 &
JOB_PID=$!
wait_for phase_is pgbench_accounts sync || { tail -20 "$WORK/run2.out"; fail "no sync after the restart"; }
grep -q "resuming; $done_before of $total chunks" "$WORK/run2.out" ||
  { tail -20 "$WORK/run2.out"; fail "the second run did not keep the committed chunks"; }
grep -E "copy: [0-9]+ chunks copied, $done_before reconciled" "$WORK/run2.out" ||
  fail "the second run copied the committed chunks again"
sleep 2
stop_load "$WORK/load" || fail "pgbench saw failures"
WAIT_SECS=60 wait_for same_rows pgbench_accounts pgbench_accounts__pgshift ||
  { tail -20 "$WORK/run2.out"; fail "shadow differs from source after resume and catch-up"; }
assert_eq "$(q "SELECT count(*) FROM pgbench_accounts__pgshift")" 500000 "rows in the shadow"
grep -h "rows removed" "$WORK/run2.out" | head -3 || true

"$PGSHIFT_BIN" cutover -c "$WORK/job.ini"
wait "$JOB_PID" || { tail -20 "$WORK/run2.out"; fail "cutover failed"; }
tpcb_invariant "$DB" || fail "TPC-B invariant broken"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'pgbench_accounts'")" p "partitioned after cutover"
assert_eq "$(q "SELECT count(*) FROM pgshift.copy_chunks")" 0 "chunk plan removed after the copy"
