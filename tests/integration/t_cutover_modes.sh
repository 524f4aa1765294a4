#!/usr/bin/env bash
# [cutover] mode = window with time_zone, the postpone file, and
# finalize --drop-old:
#  - a time zone the server does not know: exit 2, nothing created;
#  - outside the window the job syncs but does not cut over;
#  - `pgshift cutover` is held while the postpone file exists, and goes
#    through once it is removed;
#  - finalize --drop-old ends the job and drops the old table.
. "$(dirname "$0")/lib.sh"

sql -c "CREATE TABLE ev (id bigint PRIMARY KEY, note text)"
sql -c "INSERT INTO ev SELECT g, 'n' || g FROM generate_series(1, 5000) g"
# A one-hour window starting two hours from now in Asia/Tokyo.
closed=$(q "SELECT to_char(now() AT TIME ZONE 'Asia/Tokyo' + interval '2 hours', 'HH24:MI') || '-' || to_char(now() AT TIME ZONE 'Asia/Tokyo' + interval '3 hours', 'HH24:MI')")
write_job "$WORK/bad.ini" ev id 1000 "[cutover]" "mode = window" "window = $closed" "time_zone = Mars/Olympus"
set +e
"$PGSHIFT_BIN" run -c "$WORK/bad.ini" >"$WORK/bad.out" 2>&1
rc=$?
set -e
assert_eq "$rc" 2 "exit code for an unknown time zone"
grep -q "cutover.time_zone" "$WORK/bad.out" || fail "the error does not name cutover.time_zone"
assert_no_job_objects

write_job "$WORK/job.ini" ev id 1000 "[cutover]" "mode = window" "window = $closed" "time_zone = Asia/Tokyo" \
  "postpone_file = $WORK/hold"
"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run.out" 2>&1 &
JOB_PID=$!
wait_for phase_is ev sync || { tail -20 "$WORK/run.out"; fail "no sync"; }
sleep 3
assert_eq "$(job_phase ev)" sync "outside the window ($closed Asia/Tokyo): no cutover"

touch "$WORK/hold"
"$PGSHIFT_BIN" cutover -c "$WORK/job.ini" >/dev/null
sleep 3
assert_eq "$(job_phase ev)" sync "postpone file holds a requested cutover"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'ev'")" r "source untouched while postponed"
rm "$WORK/hold"
wait_for phase_is ev reverse || { tail -20 "$WORK/run.out"; fail "no cutover after the postpone file was removed"; }
sql -c "INSERT INTO ev VALUES (5001, 'after cutover')"
WAIT_SECS=30 wait_for same_rows ev ev__pgshift_old || fail "reverse stream did not bring the new row back"

"$PGSHIFT_BIN" finalize -c "$WORK/job.ini" --drop-old >/dev/null
wait "$JOB_PID" || { tail -20 "$WORK/run.out"; fail "run did not end cleanly after finalize"; }
assert_eq "$(job_phase ev)" done "phase after finalize"
assert_eq "$(q "SELECT count(*) FROM pg_class WHERE relname = 'ev__pgshift_old'")" 0 "old table dropped"
assert_eq "$(q "SELECT count(*) FROM ev")" 5001 "rows in the partitioned table"
assert_no_job_objects
