#!/usr/bin/env bash
# Decoder behaviour on a live server:
# - an idle published table does not pin WAL: while only other tables are
#   written, the slot's confirmed_flush_lsn follows the server (keepalive
#   walEnd is confirmed when nothing is in flight);
# - DDL on the source during sync: a column added on both source and shadow
#   is taken and the job continues; a column type change stops the job with a
#   message naming the table, the column and the change, and nothing after
#   it is applied.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE TABLE metrics (id bigserial PRIMARY KEY, at timestamptz NOT NULL, v int);
INSERT INTO metrics (at, v) SELECT timestamptz '2025-01-01' + i * interval '1 hour', i FROM generate_series(1, 1000) i;
CREATE TABLE other (x int, pad text);
SQL
write_job "$WORK/job.ini" metrics at "1 month" "premake = 2" "[cutover]" "mode = manual"
"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run.out" 2>&1 &
pid=$!
wait_for phase_is metrics sync || { cat "$WORK/run.out"; fail "never reached sync"; }

# Idle source table, busy cluster: the slot must keep up with the server.
mark=$(q "SELECT pg_current_wal_lsn()")
sql -c "INSERT INTO other SELECT i, repeat('x', 500) FROM generate_series(1, 20000) i"
past_mark() { [ "$(q "SELECT confirmed_flush_lsn >= '$mark' FROM pg_replication_slots WHERE database = '$DB'")" = t ]; }
WAIT_SECS=30 wait_for past_mark || fail "the slot's confirmed_flush_lsn stayed behind on an idle table"
echo "idle table: confirmed_flush_lsn moved past $mark while only 'other' was written"

# Compatible DDL: the column exists on both sides.
sql -c "ALTER TABLE metrics__pgshift ADD COLUMN note text" -c "ALTER TABLE metrics ADD COLUMN note text"
sql -c "INSERT INTO metrics (at, v, note) VALUES ('2025-01-05', 1, 'with note')" -c "UPDATE metrics SET note = 'n' WHERE id = 3"
WAIT_SECS=60 wait_for same_rows metrics metrics__pgshift || fail "rows differ after a compatible ADD COLUMN"
kill -0 "$pid" || fail "job stopped on a compatible change"

# Incompatible DDL: the job must stop and name the change.
sql -c "ALTER TABLE metrics ALTER COLUMN v TYPE text" -c "INSERT INTO metrics (at, v) VALUES ('2025-01-06', 'abc')"
set +e
wait "$pid"; rc=$?
set -e
grep -E "changed shape|error" "$WORK/run.out" | head -3
assert_eq "$rc" 1 "exit code after an incompatible change"
grep -q '"public"."metrics"' "$WORK/run.out" || fail "table not named"
grep -q '"v"' "$WORK/run.out" || fail "column not named"
grep -q 'changed type' "$WORK/run.out" || fail "change not described"
assert_eq "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 0 "slot dropped"
