#!/usr/bin/env bash
# A source without a replica identity: plan and run exit 3, print the exact
# ALTER TABLE to run, and create nothing (a publication would break the
# application's UPDATE and DELETE on the table).
. "$(dirname "$0")/lib.sh"

sql -c "CREATE TABLE \"Audit Log\" (at timestamptz NOT NULL, who text, what text)"
sql -c "INSERT INTO \"Audit Log\" SELECT now() - i * interval '1 hour', 'u' || i, 'x' FROM generate_series(1, 100) i"
write_job "$WORK/job.ini" '"Audit Log"' at "1 day"
before=$(q "SELECT count(*) FROM pg_class")

set +e
"$PGSHIFT_BIN" plan -c "$WORK/job.ini" >"$WORK/plan.out" 2>&1; plan_rc=$?
"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run.out" 2>&1; run_rc=$?
set -e
cat "$WORK/run.out"
assert_eq "$plan_rc" 3 "plan exit code"
assert_eq "$run_rc" 3 "run exit code"
grep -q 'ALTER TABLE "public"."Audit Log" REPLICA IDENTITY FULL;' "$WORK/run.out" || fail "fix not printed"
grep -q 'ALTER TABLE "public"."Audit Log" REPLICA IDENTITY FULL;' "$WORK/plan.out" || fail "fix not printed by plan"
assert_no_job_objects
assert_eq "$(q "SELECT count(*) FROM pg_class")" "$before" "relations created"
assert_eq "$(q "SELECT to_regclass('pgshift.jobs') IS NULL")" t "job state created"
# The application can still update and delete.
sql -c "UPDATE \"Audit Log\" SET who = 'z' WHERE who = 'u1'" -c "DELETE FROM \"Audit Log\" WHERE who = 'u2'"
