# Shared helpers for the integration tests. Each test gets its own database
# in the cluster the ctest fixture started, and drops it at the end.
set -euo pipefail
: "${PGSHIFT_BIN:?set by ctest}" "${PGSHIFT_CLUSTER:?set by ctest}" "${PGSHIFT_SRC:?set by ctest}"
# shellcheck disable=SC1091
. "$PGSHIFT_CLUSTER/env"
# shellcheck disable=SC1091
. "$PGSHIFT_SRC/scripts/lib/load.sh"

TEST_NAME=$(basename "$0" .sh)
DB=$TEST_NAME
WORK=$(mktemp -d)
export PGDATABASE=$DB

cleanup() {
  local rc=$?
  [ -n "${LOAD_PID:-}" ] && { touch "$WORK/load/stop" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null || true; }
  jobs -p | xargs -r kill -9 2>/dev/null || true
  psql -X -q -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB' AND NOT active" >/dev/null 2>&1 || true
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    psql -X -q -d postgres -c "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname LIKE 'pgshift%'" >/dev/null 2>&1 && break
    sleep 0.5
  done
  if declare -F test_cleanup >/dev/null; then test_cleanup; fi
  rm -rf "$WORK"
  if [ $rc -eq 0 ]; then echo "PASS $TEST_NAME"; else echo "FAIL $TEST_NAME (exit $rc)"; fi
}
trap cleanup EXIT

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null
psql -X -q -d postgres -c "CREATE DATABASE \"$DB\"" >/dev/null

q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }

# write_job FILE TABLE COLUMN INTERVAL [extra ini lines...]
write_job() {
  local file=$1 table=$2 column=$3 interval=$4
  shift 4
  {
    echo "[source]"
    echo "dsn = host=$PGHOST port=$PGPORT dbname=$DB user=$PGUSER"
    echo "table = $table"
    echo "[partitioning]"
    echo "column = $column"
    echo "interval = $interval"
    for line in "$@"; do echo "$line"; done
  } >"$file"
}

# start_job [PAUSE_POINT]: `pgshift run` on $WORK/job.ini in the background
# (pid in JOB_PID), its output appended to $WORK/run.out; PAUSE_POINT sets
# PGSHIFT_TEST_PAUSE_AT (src/test_hook.h).
start_job() {
  PGSHIFT_TEST_PAUSE_AT=${1:-} "$PGSHIFT_BIN" run -c "$WORK/job.ini" >>"$WORK/run.out" 2>&1 &
  JOB_PID=$!
}

# Configs may override a section's keys by appending lines; keep sections apart.
job_phase() { q "SELECT phase FROM pgshift.jobs WHERE job_name = '$1'" 2>/dev/null || true; }
phase_is() { [ "$(job_phase "$1")" = "$2" ]; }

# wait_for COMMAND... : retries for up to WAIT_SECS (default 60) seconds.
wait_for() {
  local deadline=$(( $(date +%s) + ${WAIT_SECS:-60} ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# no_job_objects: nothing of any job left in this database.
assert_no_job_objects() {
  assert_eq "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 0 "replication slots"
  assert_eq "$(q "SELECT count(*) FROM pg_publication")" 0 "publications"
  assert_eq "$(q "SELECT count(*) FROM pg_replication_origin WHERE roname LIKE 'pgshift%'")" 0 "replication origins (cluster-wide)"
  assert_eq "$(q "SELECT count(*) FROM pg_class WHERE relname LIKE '%\_\_pgshift%'")" 0 "shadow relations"
  if [ "$(q "SELECT to_regclass('pgshift.copy_chunks') IS NOT NULL")" = t ]; then
    assert_eq "$(q "SELECT count(*) FROM pgshift.copy_chunks")" 0 "copy chunk plans"
  fi
}

# same_rows A B: the two relations hold the same multiset of rows.
same_rows() {
  [ "$(q "SELECT (SELECT count(*) FROM (TABLE $1 EXCEPT ALL TABLE $2) a) + (SELECT count(*) FROM (TABLE $2 EXCEPT ALL TABLE $1) b)")" = 0 ]
}

# pause_and_compare WHAT OTHER_TABLE: stop the pgbench load in $WORK/load,
# wait until OTHER_TABLE caught up with the live pgbench_accounts, check the
# TPC-B invariant, restart the load (the job's log is $WORK/run.out).
pause_and_compare() {
  stop_load "$WORK/load" >/dev/null || fail "pgbench saw failures ($1)"
  WAIT_SECS=90 wait_for same_rows pgbench_accounts "$2" || { tail -20 "$WORK/run.out"; fail "$2 differs from the live table ($1)"; }
  tpcb_invariant "$DB" >/dev/null || fail "TPC-B invariant broken ($1)"
  echo "$1: live table and $2 match, invariant holds"
  start_load "$DB" 4 "$WORK/load"
}
