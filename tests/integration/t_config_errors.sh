#!/usr/bin/env bash
# Configuration errors exit 2 and name the key; a password in the dsn is
# refused without being echoed.
. "$(dirname "$0")/lib.sh"

expect_config_error() {
  local pattern=$1 rc
  set +e
  "$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/out" 2>&1; rc=$?
  set -e
  assert_eq "$rc" 2 "exit code for $pattern"
  grep -q -- "$pattern" "$WORK/out" || { cat "$WORK/out"; fail "message lacks '$pattern'"; }
}

write_job "$WORK/job.ini" events created_at "3 fortnights"
expect_config_error "partitioning.interval"

write_job "$WORK/job.ini" events created_at "1 day" "colour = blue"
expect_config_error "partitioning.colour"

write_job "$WORK/job.ini" events created_at "1 day" "[copy]" "workers = 0"
expect_config_error "copy.workers"

printf '[source]\ndsn = host=%s password=sekrit123\ntable = events\n[partitioning]\ncolumn = c\ninterval = 1 day\n' "$PGHOST" >"$WORK/job.ini"
expect_config_error "PGPASSWORD"
if grep -q sekrit123 "$WORK/out"; then fail "password echoed"; fi

printf '[partitioning]\ncolumn = c\ninterval = 1 day\n' >"$WORK/job.ini"
expect_config_error "source.dsn"

set +e
"$PGSHIFT_BIN" run >"$WORK/out" 2>&1; rc=$?
"$PGSHIFT_BIN" frobnicate -c x >"$WORK/out2" 2>&1; rc2=$?
set -e
assert_eq "$rc" 2 "missing -c"
assert_eq "$rc2" 2 "unknown command"
