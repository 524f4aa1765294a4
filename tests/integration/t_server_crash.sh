#!/usr/bin/env bash
# Exactly once across a crash of the server itself, and a job that rides it
# out. The applier commits with synchronous_commit = off, so an immediate
# stop loses its last commits (and the origin's progress with them); the slot
# must still hold those changes, because the decoder confirms a source LSN
# only once the target's WAL holding its commit is flushed. CRASH_RUNS times
# (default 3): pgbench load, a last marked change, crash the cluster
# (pg_ctl stop -m immediate) right after the applier committed it and before
# the WAL writer flushed it, restart the cluster; the same pgshift process
# reconnects ([safety] reconnect_timeout_s), resumes from the origin, and the
# shadow must equal the source row for row.
#
# Runs on a cluster of its own (the shared one must not crash under other
# tests), with wal_writer_delay = 10s so that the applier's asynchronous
# commits stay unflushed long enough to be lost.
. "$(dirname "$0")/lib.sh"
RUNS=${CRASH_RUNS:-3}

psql -X -q -d postgres -c "DROP DATABASE \"$DB\"" >/dev/null
PRIVATE=$WORK/cluster
test_cleanup() { "$PGSHIFT_SRC/scripts/pgcluster.sh" stop "$PRIVATE" >/dev/null 2>&1 || true; }
"$PGSHIFT_SRC/scripts/pgcluster.sh" start "$PRIVATE" >/dev/null
# shellcheck disable=SC1091
. "$PRIVATE/env"
export PGDATABASE=$DB
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl_private() { as_owner "$PGBIN/pg_ctl" -D "$PGSHIFT_CLUSTER_DIR/data" "$@" >/dev/null; }
psql -X -q -d postgres -c "CREATE DATABASE \"$DB\"" \
  -c "ALTER SYSTEM SET wal_writer_delay = '10s'" -c "ALTER SYSTEM SET autovacuum = off" \
  -c "SELECT pg_reload_conf()" >/dev/null

"$PGBIN/pgbench" -i -s 2 -q "$DB" >/dev/null 2>&1
write_job "$WORK/job.ini" pgbench_accounts aid 50000 "premake = 2" "[cutover]" "mode = manual" "reverse = false"
synced() { same_rows pgbench_accounts pgbench_accounts__pgshift; }
# wait_applied_past LSN: polls every 5 ms (in one session) until the job's
# origin records a source transaction ending after LSN as committed.
wait_applied_past() {
  q "DO \$\$ BEGIN
       FOR i IN 1..12000 LOOP
         EXIT WHEN (SELECT bool_and(remote_lsn > '$1') FROM pg_replication_origin_status);
         PERFORM pg_sleep(0.005);
       END LOOP;
     END \$\$" >/dev/null
  [ "$(q "SELECT bool_and(remote_lsn > '$1') FROM pg_replication_origin_status")" = t ]
}
missing() { q "SELECT count(*) FROM (TABLE pgbench_accounts EXCEPT ALL TABLE pgbench_accounts__pgshift) d"; }

start_job
wait_for phase_is pgbench_accounts sync || { tail -20 "$WORK/run.out"; fail "the job did not reach sync"; }
lost_total=0
unflushed_total=0
for run in $(seq 1 "$RUNS"); do
  start_load "$DB" 4 "$WORK/load"
  sleep "$(( 1 + RANDOM % 2 )).$(( RANDOM % 10 ))"
  stop_load "$WORK/load" >/dev/null || fail "run $run: pgbench saw failures"
  # A last source change that the crash can lose in the shadow (filler
  # leaves the TPC-B sums alone). Caught up is read from the origin, not by
  # comparing the tables: a scan would prune pages and write WAL behind the
  # applier's commit, which the WAL writer would then write out too.
  mark=$(q "WITH u AS (UPDATE pgbench_accounts SET filler = md5(random()::text) WHERE aid = 1 RETURNING 1)
            SELECT pg_current_wal_insert_lsn() FROM u")
  wait_applied_past "$mark" || { tail -20 "$WORK/run.out"; fail "run $run: the job did not catch up"; }
  # The property itself: while the applier's last commit is not flushed,
  # the slot has not been told of the source transaction it applied.
  state=$(q "SELECT o.local_lsn > pg_current_wal_flush_lsn(), s.confirmed_flush_lsn < o.remote_lsn
               FROM pg_replication_origin_status o, pg_replication_slots s WHERE s.database = '$DB'")
  [ "$state" != "t|f" ] || fail "run $run: the slot confirmed a source LSN whose commit in the shadow is not flushed"
  unflushed=0
  [ "$state" = "t|t" ] && unflushed=1
  unflushed_total=$((unflushed_total + unflushed))
  pg_ctl_private -m immediate -w stop
  sleep 1
  kill -0 "$JOB_PID" 2>/dev/null || { tail -20 "$WORK/run.out"; fail "run $run: the job exited when the server crashed"; }
  # Held while the server comes back, so that what the crash lost is seen
  # before the job streams it again.
  kill -STOP "$JOB_PID"
  pg_ctl_private -l "$PGSHIFT_CLUSTER_DIR/server.log" -w -t 60 start
  lost=$(missing)
  lost_total=$((lost_total + lost))
  kill -CONT "$JOB_PID"
  WAIT_SECS=90 wait_for synced || { tail -20 "$WORK/run.out"; fail "run $run: shadow differs from source after the crash and reconnect"; }
  kill -0 "$JOB_PID" 2>/dev/null || fail "run $run: the job exited"
  echo "run $run: crashed the server with the shadow caught up ($([ $unflushed = 1 ] && echo "its last commit not flushed, the slot not told of it" || echo "everything flushed")); it came back $lost rows short; the job reconnected and resumed, shadow equals source"
done
assert_eq "$(grep -c 'reconnect: connected' "$WORK/run.out")" "$RUNS" "reconnects in the job's log"
echo "the job's log of the last crash:"
grep -B2 -A2 "stream stopped" "$WORK/run.out" | tail -8
echo "$unflushed_total of $RUNS crashes hit an unflushed commit of the applier and lost $lost_total rows of applied changes in all; every one was streamed again after the reconnect"
[ "$unflushed_total" -gt 0 ] || fail "no crash hit an unflushed commit of the applier: the drill tested nothing"

"$PGSHIFT_BIN" cutover -c "$WORK/job.ini"
wait "$JOB_PID" || { tail -20 "$WORK/run.out"; fail "final run failed"; }
tpcb_invariant "$DB" || fail "TPC-B invariant broken after the crashes"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'pgbench_accounts'")" p "partitioned"
assert_eq "$(q "SELECT count(*) FROM pgbench_accounts")" 200000 "row count"
