#!/usr/bin/env bash
# pgshift verify: during sync matching tables pass and a row changed only in
# the shadow is found and listed by key; after cutover the old and new tables
# match; a hot query with the partition key prunes, one without does not and
# fails verify (exit 1); --json is machine-readable.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL,
    tenant int,
    payload jsonb,
    note text
);
INSERT INTO events (created_at, tenant, payload, note)
  SELECT timestamptz '2025-01-01 00:00+00' + i * interval '3 hours', i % 10,
         jsonb_build_object('i', i), CASE WHEN i % 7 = 0 THEN NULL ELSE 'n' || i END
  FROM generate_series(1, 1500) i;
SQL
prune="query = SELECT * FROM events WHERE created_at >= '2025-03-01' AND created_at < '2025-03-05'"
noprune="query = SELECT * FROM events WHERE tenant = 3"
base=("premake = 1" "[cutover]" "mode = manual")
# A job without a reverse stream if this version has one: verify after
# cutover then compares two tables nobody writes to.
write_job "$WORK/probe.ini" events created_at "1 month" "${base[@]}" "reverse = off"
if "$PGSHIFT_BIN" status -c "$WORK/probe.ini" >/dev/null 2>&1; then base+=("reverse = off"); fi
verify=("[verify]" "rechecks = 2" "recheck_wait_ms = 300")
write_job "$WORK/job.ini" events created_at "1 month" "${base[@]}" "${verify[@]}" "$prune" "$noprune"
write_job "$WORK/ok.ini" events created_at "1 month" "${base[@]}" "${verify[@]}" "$prune"
write_job "$WORK/shadowq.ini" events created_at "1 month" "${base[@]}" "${verify[@]}" \
  "query = SELECT * FROM events__pgshift WHERE created_at < '2025-02-01'"

rc=0; "$PGSHIFT_BIN" verify -c "$WORK/job.ini" >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 3 "verify before the job starts exits 3"

"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run.out" 2>&1 &
pid=$!
wait_for phase_is events sync || { cat "$WORK/run.out"; fail "never reached sync"; }
sql -c "INSERT INTO events (created_at, tenant) VALUES ('2025-02-10', 4)" \
    -c "UPDATE events SET note = 'upd' WHERE id % 100 = 0" -c "DELETE FROM events WHERE id = 5"
WAIT_SECS=60 wait_for same_rows events events__pgshift || fail "shadow never caught up"

# During sync: data matches; the queries name events (not partitioned yet) and are skipped.
"$PGSHIFT_BIN" verify -c "$WORK/job.ini" >"$WORK/v1.out" 2>"$WORK/v1.err" || { cat "$WORK/v1.out" "$WORK/v1.err"; fail "verify during sync failed"; }
cat "$WORK/v1.out"
grep -q "^data     PASS" "$WORK/v1.out" || fail "data check did not pass"
grep -q "pruning is checked after cutover" "$WORK/v1.out" || fail "pruning not deferred during sync"
# A query naming the shadow is checked during sync.
"$PGSHIFT_BIN" verify -c "$WORK/shadowq.ini" >"$WORK/v1b.out" 2>&1 || { cat "$WORK/v1b.out"; fail "shadow query did not prune"; }
grep -q "^pruning  PASS" "$WORK/v1b.out" || fail "shadow query not checked"

# Under a steady write load the data check still passes: chunks and rows
# that differ only because the stream trails are looked at again until they
# match (changes in flight).
cat >"$WORK/load.sql" <<'PGB'
\set id random(1, 1500)
UPDATE events SET note = md5(random()::text), payload = jsonb_build_object('i', :id, 'r', random()) WHERE id = :id;
PGB
write_job "$WORK/load.ini" events created_at "1 month" "${base[@]}" "[verify]" "rechecks = 5" "recheck_wait_ms = 300"
"$PGBIN/pgbench" -n -c 2 -R 50 -T 30 -f "$WORK/load.sql" >"$WORK/pgbench.out" 2>&1 &
load_pid=$!
sleep 1
for i in 1 2 3; do
  "$PGSHIFT_BIN" verify -c "$WORK/load.ini" >"$WORK/vl$i.out" 2>"$WORK/vl$i.err" || { cat "$WORK/vl$i.out" "$WORK/vl$i.err"; fail "verify under load failed (run $i)"; }
  grep -q "^data     PASS" "$WORK/vl$i.out" || fail "data check under load did not pass (run $i)"
done
cat "$WORK/vl3.out"
kill "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true
WAIT_SECS=60 wait_for same_rows events events__pgshift || fail "shadow never caught up after the load"

# A row changed and a row deleted only in the shadow are found and listed by key.
sql -c "UPDATE events__pgshift SET note = 'tampered' WHERE id = 42" -c "DELETE FROM events__pgshift WHERE id = 77"
rc=0; "$PGSHIFT_BIN" verify -c "$WORK/job.ini" --json >"$WORK/v2.json" 2>"$WORK/v2.err" || rc=$?
assert_eq "$rc" 1 "verify with a tampered shadow exits 1"
python3 - "$WORK/v2.json" <<'PY' || { cat "$WORK/v2.json"; fail "mismatch not reported by key"; }
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ok"] is False and j["data"]["ok"] is False, j
rows = {r["key"]: r["problem"] for r in j["data"]["rows"]}
assert rows == {"(42)": "differs", "(77)": "missing in new table"}, rows
assert j["data"]["rechecks"] == 2, j["data"]["rechecks"]
assert len(j["data"]["differing_chunks"]) >= 1
PY
grep -q "re-checking" "$WORK/v2.err" || fail "differing chunks were not re-checked"
# Repair the shadow the way the source has it, then cut over.
sql -c "UPDATE events__pgshift s SET note = e.note FROM events e WHERE s.id = 42 AND e.id = 42" \
    -c "INSERT INTO events__pgshift SELECT * FROM events WHERE id = 77"
"$PGSHIFT_BIN" verify -c "$WORK/job.ini" >/dev/null 2>&1 || fail "verify after repair failed"

"$PGSHIFT_BIN" cutover -c "$WORK/job.ini"
after_cutover() { phase_is events done || phase_is events reverse; }
wait_for after_cutover || { cat "$WORK/run.out"; fail "cutover did not happen"; }
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'events'")" p "events partitioned"

# After cutover: data matches; the pruning query passes, the other fails.
rc=0; "$PGSHIFT_BIN" verify -c "$WORK/job.ini" --json >"$WORK/v3.json" 2>/dev/null || rc=$?
assert_eq "$rc" 1 "verify with a non-pruning query exits 1"
python3 - "$WORK/v3.json" <<'PY' || { cat "$WORK/v3.json"; fail "after-cutover verify report wrong"; }
import json, sys
j = json.load(open(sys.argv[1]))
d, p = j["data"], j["pruning"]
assert d["ok"] is True and d["rows_old"] == d["rows_new"] == 1500, d
assert d["old"] == "public.events__pgshift_old" and d["new"] == "public.events", d
q = {x["query"]: x for x in p["queries"]}
good = q["SELECT * FROM events WHERE created_at >= '2025-03-01' AND created_at < '2025-03-05'"]
bad = q["SELECT * FROM events WHERE tenant = 3"]
assert good["status"] == "pass" and good["partitions_scanned"] == ["events_p2025_03"], good
assert bad["status"] == "fail" and len(bad["partitions_scanned"]) == bad["partitions_total"], bad
assert p["ok"] is False and j["ok"] is False
PY
"$PGSHIFT_BIN" verify -c "$WORK/ok.ini" >"$WORK/v4.out" 2>&1 || { cat "$WORK/v4.out"; fail "verify with a pruning query failed"; }
cat "$WORK/v4.out"
grep -q "events_p2025_03" "$WORK/v4.out" || fail "scanned partition not listed"
grep -q "^result   PASS" "$WORK/v4.out" || fail "no PASS result"
# Run-time pruning with EXPLAIN ANALYZE (rolled back, read only).
write_job "$WORK/an.ini" events created_at "1 month" "${base[@]}" "[verify]" "analyze = true" \
  "query = SELECT * FROM events WHERE created_at > now() - interval '1 day'"
"$PGSHIFT_BIN" verify -c "$WORK/an.ini" --json >"$WORK/v5.json" 2>&1 || { cat "$WORK/v5.json"; fail "run-time pruning not recognised"; }
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); q=j['pruning']['queries'][0]; assert q['status']=='pass' and q['subplans_removed']>0, q" "$WORK/v5.json" \
  || { cat "$WORK/v5.json"; fail "subplans removed not counted"; }
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
