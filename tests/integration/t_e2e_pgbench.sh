#!/usr/bin/env bash
# The demo scenario at small scale: while pgbench writes (TPC-B, 4 clients),
# convert pgbench_accounts (RANGE on aid) and pgbench_history (RANGE on mtime,
# REPLICA IDENTITY FULL) with automatic cutover; then the TPC-B invariant
# holds, both tables are partitioned, the old ones are kept, and pgbench saw
# no failed transaction.
. "$(dirname "$0")/lib.sh"

"$PGBIN/pgbench" -i -s 2 -q "$DB" >/dev/null 2>&1
sql -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL"
write_job "$WORK/accounts.ini" pgbench_accounts aid 50000 "premake = 2" "[copy]" "workers = 2" "[cutover]" "reverse = false"
write_job "$WORK/history.ini" pgbench_history mtime "1 minute" "premake = 30" "default_partition = true" "[cutover]" "reverse = false"

start_load "$DB" 4 "$WORK/load"
sleep 3
"$PGSHIFT_BIN" run -c "$WORK/accounts.ini" | tee "$WORK/accounts.out"
"$PGSHIFT_BIN" run -c "$WORK/history.ini" | tee "$WORK/history.out"
sleep 3
stop_load "$WORK/load"

tpcb_invariant "$DB" || fail "TPC-B invariant broken"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'pgbench_accounts'")" p "accounts partitioned"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'pgbench_history'")" p "history partitioned"
assert_eq "$(q "SELECT count(*) FROM pg_class WHERE relname IN ('pgbench_accounts__pgshift_old', 'pgbench_history__pgshift_old')")" 2 "old tables kept"
assert_eq "$(q "SELECT count(*) FROM pgbench_accounts")" 200000 "account rows"
assert_eq "$(q "SELECT count(*) > 1 FROM pg_inherits WHERE inhparent = 'pgbench_history'::regclass")" t "history partitions"
assert_eq "$(q "SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'pgbench_accounts'::regclass AND indisprimary")" pgbench_accounts_pkey "original PK name"
assert_eq "$(q "SELECT phase FROM pgshift.jobs WHERE job_name = 'pgbench_accounts'")" done "job state"
assert_no_job_objects_after_cutover() {
  assert_eq "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 0 "slots"
  assert_eq "$(q "SELECT count(*) FROM pg_publication")" 0 "publications"
  assert_eq "$(q "SELECT count(*) FROM pg_replication_origin")" 0 "origins"
}
assert_no_job_objects_after_cutover
grep -q "source locked" "$WORK/accounts.out" || fail "summary missing"
"$PGSHIFT_BIN" status -c "$WORK/accounts.ini" | grep -q "last cutover" || fail "status lacks the cutover"
