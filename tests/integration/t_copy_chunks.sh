#!/usr/bin/env bash
# Primary-key-range chunks with several workers on a composite text key with
# awkward names; a copy paused by [copy] pause_retained_wal says so in the log,
# in `status` and in `status --json`; stopped while paused and run again
# without the limit, it keeps its committed chunks; every partition gets its
# indexes and the shadow equals the source.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE SCHEMA "My App";
CREATE TABLE "My App"."Order Items" (region text NOT NULL, id int NOT NULL, created date NOT NULL,
                                     qty int, note text, PRIMARY KEY (region, id));
CREATE INDEX "Order Items_created_qty" ON "My App"."Order Items" (created, qty);
INSERT INTO "My App"."Order Items"
SELECT (ARRAY['eu', 'us', 'ap', 'o''hare'])[1 + g % 4], g, date '2025-01-01' + g % 180, g % 97,
       repeat(md5(g::text), 2)
  FROM generate_series(1, 600000) g;
ANALYZE "My App"."Order Items";
SQL
T='"My App"."Order Items"'
write_job "$WORK/job.ini" "$T" created "1 month" "premake = 0" \
  "[copy]" "workers = 3" "chunk_rows = 5000" "pause_retained_wal = 4MB" \
  "[cutover]" "mode = manual" "reverse = false"
json_paused() {
  "$PGSHIFT_BIN" status -c "$WORK/job.ini" --json |
    python3 -c 'import json, sys; c = json.load(sys.stdin).get("copy") or {}; print(c.get("paused") or "")'
}
paused() { [ -n "$(json_paused)" ]; }
chunks_done() { q "SELECT count(*) FILTER (WHERE done) FROM pgshift.copy_chunks"; }

"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run1.out" 2>&1 &
JOB_PID=$!
WAIT_SECS=30 wait_for paused || { tail -20 "$WORK/run1.out"; fail "the copy did not pause"; }
json_paused | grep -q "above copy.pause_retained_wal = 4 MB" || fail "status --json: $(json_paused)"
"$PGSHIFT_BIN" status -c "$WORK/job.ini" | grep -E "^copy: .*PAUSED: slot .* retains [0-9]+ MB of WAL" ||
  fail "status text does not show the pause"
grep -q "pausing chunks: slot" "$WORK/run1.out" || fail "no pause in the log"
sleep 1.5  # a chunk running when the pause began still commits
n1=$(chunks_done)
sleep 2
n2=$(chunks_done)
total=$(q "SELECT count(*) FROM pgshift.copy_chunks")
assert_eq "$n2" "$n1" "chunks committed while paused"
[ "$n2" -gt 0 ] && [ "$n2" -lt "$total" ] || fail "expected a partial copy, got $n2 of $total chunks"
echo "paused with $n2 of $total chunks committed"
kill -TERM "$JOB_PID"
wait "$JOB_PID" && fail "a stopped run should exit 1"
assert_eq "$(job_phase order_items)" copy "phase after the stop"

write_job "$WORK/job.ini" "$T" created "1 month" "premake = 0" \
  "[copy]" "workers = 3" "chunk_rows = 5000" "[cutover]" "mode = manual" "reverse = false"
"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run2.out" 2>&1 &
JOB_PID=$!
wait_for phase_is order_items sync || { tail -20 "$WORK/run2.out"; fail "no sync after the restart"; }
grep -q "resuming; $n2 of $total chunks" "$WORK/run2.out" || { cat "$WORK/run2.out"; fail "committed chunks not kept"; }
grep -qE "reconciled \(in [0-9]+ ranges\), with 3 workers" "$WORK/run2.out" || fail "expected 3 copy workers"
same_rows "$T" '"My App"."Order Items__pgshift"' || fail "shadow differs from source"
leaves=$(q "SELECT count(*) FROM pg_partition_tree('\"My App\".\"Order Items__pgshift\"') WHERE isleaf")
assert_eq "$(q "SELECT count(*) FROM pg_partition_tree('\"My App\".\"Order Items__pgshift\"') t
               JOIN pg_index i ON i.indrelid = t.relid WHERE t.isleaf AND i.indisvalid")" \
  "$((leaves * 2))" "valid indexes on the partitions (primary key and one secondary each)"
assert_eq "$(q "SELECT count(*) FROM pg_index WHERE indrelid = '\"My App\".\"Order Items__pgshift\"'::regclass
               AND indisvalid")" 2 "valid indexes on the partitioned table"
kill -TERM "$JOB_PID"
wait "$JOB_PID" || true
