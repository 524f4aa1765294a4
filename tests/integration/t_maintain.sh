#!/usr/bin/env bash
# pgshift maintain after cutover: premake creates future partitions and a
# second run does nothing; rows in the DEFAULT partition are moved into new
# partitions; retention detaches, archives and drops old partitions; a run
# while another holds the job's advisory lock exits 0 without doing
# anything; --dry-run changes nothing; partitions lists the result.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE TABLE items (id bigint PRIMARY KEY, v text, v2 text GENERATED ALWAYS AS (upper(v)) STORED);
CREATE INDEX items_v ON items (v);
INSERT INTO items (id, v) SELECT i, 'v' || i FROM generate_series(1, 250) i;
CREATE TABLE hist (id bigserial PRIMARY KEY, at timestamptz NOT NULL, msg text);
-- Nine months of rows, up to now (UTC months).
INSERT INTO hist (at, msg)
  SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - m * interval '1 month'
         + d * interval '1 day', 'm' || m
  FROM generate_series(0, 8) m, generate_series(0, 3) d;
SQL
base=("[cutover]" "mode = manual")
write_job "$WORK/probe.ini" items id 100 "${base[@]}" "reverse = off"
if "$PGSHIFT_BIN" status -c "$WORK/probe.ini" >/dev/null 2>&1; then base+=("reverse = off"); fi
write_job "$WORK/items.ini" items id 100 "premake = 1" "default_partition = true" "${base[@]}"
write_job "$WORK/hist.ini" hist at "1 month" "premake = 1" "${base[@]}"

convert() {  # convert NAME: run the job and cut over
  "$PGSHIFT_BIN" run -c "$WORK/$1.ini" >"$WORK/$1.out" 2>&1 &
  local pid=$!
  wait_for phase_is "$1" sync || { cat "$WORK/$1.out"; fail "$1 never reached sync"; }
  "$PGSHIFT_BIN" cutover -c "$WORK/$1.ini"
  after() { phase_is "$1" done || phase_is "$1" reverse; }
  wait_for after "$1" || { cat "$WORK/$1.out"; fail "$1 was not cut over"; }
  if phase_is "$1" done; then wait "$pid" || { cat "$WORK/$1.out"; fail "$1 run failed"; }; fi
}
nparts() { q "SELECT count(*) FROM pg_inherits WHERE inhparent = '$1'::regclass"; }
snapshot() { q "SELECT string_agg(c.relname || ':' || pg_get_expr(c.relpartbound, c.oid), ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '$1'::regclass"; }

rc=0; "$PGSHIFT_BIN" maintain -c "$WORK/items.ini" >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 3 "maintain before the job exists exits 3"

convert items
# items: partitions p0, p100, p200, p300 (premake 1) and items_default.
assert_eq "$(nparts items)" 5 "items partitions after cutover"
sql -c "INSERT INTO items (id, v) SELECT i, 'x' || i FROM generate_series(300, 310) i" \
    -c "INSERT INTO items (id, v) SELECT i, 'far' || i FROM generate_series(5000, 5005) i" \
    -c "INSERT INTO items (id, v) VALUES (650, 'stray')"
assert_eq "$(q "SELECT count(*) FROM items_default")" 7 "rows waiting in DEFAULT"
before_sum=$(q "SELECT count(*) || '/' || sum(hashtext(t::text)::bigint) FROM items t")

# --dry-run says what it would do and changes nothing.
before=$(snapshot items)
"$PGSHIFT_BIN" maintain -c "$WORK/items.ini" --dry-run >"$WORK/dry.out" 2>&1 || { cat "$WORK/dry.out"; fail "dry run failed"; }
cat "$WORK/dry.out"
grep -q "^move     items_p5000  6 row(s)" "$WORK/dry.out" || fail "dry run does not announce the move of p5000"
grep -q "^move     items_p600  1 row(s)" "$WORK/dry.out" || fail "dry run does not announce the move of p600"
grep -q "^create   items_p5100" "$WORK/dry.out" || fail "dry run does not announce premake"
assert_eq "$(snapshot items)" "$before" "dry run changed partitions"
assert_eq "$(q "SELECT count(*) FROM items_default")" 7 "dry run moved rows"

# The real run.
"$PGSHIFT_BIN" maintain -c "$WORK/items.ini" >"$WORK/m1.out" 2>&1 || { cat "$WORK/m1.out"; fail "maintain failed"; }
cat "$WORK/m1.out"
assert_eq "$(q "SELECT count(*) FROM items_default")" 0 "DEFAULT emptied"
assert_eq "$(q "SELECT count(*) FROM items_p5000")" 6 "rows moved to items_p5000"
assert_eq "$(q "SELECT count(*) FROM items_p600")" 1 "row moved to items_p600"
assert_eq "$(q "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'items_p5100'")" \
  "FOR VALUES FROM ('5100') TO ('5200')" "premade partition bound"
assert_eq "$(q "SELECT count(*) FROM pg_constraint WHERE conname = 'pgshift_bound'")" 0 "helper CHECK dropped"
assert_eq "$(q "SELECT count(*) || '/' || sum(hashtext(t::text)::bigint) FROM items t")" "$before_sum" "rows unchanged by the move"
assert_eq "$(q "SELECT v2 FROM items WHERE id = 650")" STRAY "generated column kept"
assert_eq "$(q "SELECT count(*) FROM pg_indexes WHERE tablename = 'items_p5000'")" 2 "moved partition has the indexes"
# Idempotent: a second run does nothing.
after=$(snapshot items)
"$PGSHIFT_BIN" maintain -c "$WORK/items.ini" >"$WORK/m2.out" 2>&1 || { cat "$WORK/m2.out"; fail "second maintain failed"; }
grep -q "0 created, 0 filled from DEFAULT, 0 expired" "$WORK/m2.out" || { cat "$WORK/m2.out"; fail "second run was not a no-op"; }
assert_eq "$(snapshot items)" "$after" "second run changed partitions"
# New rows route to the premade partition.
sql -c "INSERT INTO items (id, v) VALUES (5150, 'new')"
assert_eq "$(q "SELECT tableoid::regclass FROM items WHERE id = 5150")" items_p5100 "routing to premade partition"

# A second concurrent run exits 0 without doing anything.
psql -X -q -c "SELECT pg_advisory_lock(hashtext('pgshift.maintain'), hashtext('items'))" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
holder=$!
held() { [ "$(q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" = 1 ]; }
wait_for held || fail "advisory lock holder did not start"
sql -c "INSERT INTO items (id, v) VALUES (9000, 'later')"
"$PGSHIFT_BIN" maintain -c "$WORK/items.ini" >"$WORK/m3.out" 2>&1 || { cat "$WORK/m3.out"; fail "concurrent run did not exit 0"; }
grep -q "is running; nothing done" "$WORK/m3.out" || { cat "$WORK/m3.out"; fail "concurrent run did not say why"; }
assert_eq "$(q "SELECT count(*) FROM items_default")" 1 "concurrent run moved rows"
q "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'" >/dev/null
wait "$holder" 2>/dev/null || true

# partitions lists every partition with bounds, estimates and sizes.
"$PGSHIFT_BIN" partitions -c "$WORK/items.ini" --json >"$WORK/p.json" || fail "partitions failed"
python3 - "$WORK/p.json" <<'PY' || { cat "$WORK/p.json"; fail "partitions --json wrong"; }
import json, sys
j = json.load(open(sys.argv[1]))
names = [p["name"] for p in j["partitions"]]
assert j["table"] == "public.items" and j["after_cutover"] is True, j
assert names == ["items_p0", "items_p100", "items_p200", "items_p300", "items_p600",
                 "items_p5000", "items_p5100", "items_default"], names
assert j["partitions"][-1]["default"] is True and j["partitions"][-1]["bound"] == "DEFAULT"
assert all(p["bytes"] > 0 for p in j["partitions"])
PY
"$PGSHIFT_BIN" partitions -c "$WORK/items.ini" | tee "$WORK/p.out"
grep -q "items_p5000 .*FOR VALUES FROM ('5000') TO ('5100')" "$WORK/p.out" || fail "partitions text output"

# Retention on a time-partitioned table without DEFAULT (DETACH CONCURRENTLY).
convert hist
total=$(nparts hist)  # 9 months of data + premake 1
assert_eq "$total" 10 "hist partitions"
write_job "$WORK/hist_r.ini" hist at "1 month" "premake = 1" "${base[@]}" "[maintain]" "retention = 3"
"$PGSHIFT_BIN" maintain -c "$WORK/hist_r.ini" --dry-run >"$WORK/r0.out" 2>&1 || { cat "$WORK/r0.out"; fail "retention dry run failed"; }
assert_eq "$(grep -c '^detach ' "$WORK/r0.out")" 5 "dry run lists 5 partitions to detach"
assert_eq "$(nparts hist)" "$total" "retention dry run detached"
"$PGSHIFT_BIN" maintain -c "$WORK/hist_r.ini" >"$WORK/r1.out" 2>&1 || { cat "$WORK/r1.out"; fail "retention detach failed"; }
cat "$WORK/r1.out"
grep -q "DETACH CONCURRENTLY" "$WORK/r1.out" || fail "detach without DEFAULT is not concurrent"
assert_eq "$(nparts hist)" $((total - 5)) "5 partitions detached"
assert_eq "$(q "SELECT count(*) FROM pg_class WHERE relname LIKE 'hist\_p%' AND relkind = 'r' AND NOT relispartition AND relnamespace = 'public'::regnamespace")" 5 "detached partitions kept as tables"
assert_eq "$(q "SELECT count(*) FROM hist WHERE at < date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '3 months'")" 0 "old rows gone from hist"
"$PGSHIFT_BIN" maintain -c "$WORK/hist_r.ini" >"$WORK/r2.out" 2>&1 || fail "second retention run failed"
grep -q "0 expired" "$WORK/r2.out" || { cat "$WORK/r2.out"; fail "retention not idempotent"; }

write_job "$WORK/hist_a.ini" hist at "1 month" "premake = 1" "${base[@]}" "[maintain]" "retention = 2" "retention_action = archive" "archive_schema = old_hist"
"$PGSHIFT_BIN" maintain -c "$WORK/hist_a.ini" >"$WORK/r3.out" 2>&1 || { cat "$WORK/r3.out"; fail "retention archive failed"; }
assert_eq "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'old_hist'")" 1 "one partition archived"
assert_eq "$(nparts hist)" $((total - 6)) "archived partition detached"

write_job "$WORK/hist_d.ini" hist at "1 month" "premake = 1" "${base[@]}" "[maintain]" "retention = 1" "retention_action = drop"
tables_before=$(q "SELECT count(*) FROM pg_class WHERE relname LIKE 'hist\_p%' AND relkind = 'r'")
"$PGSHIFT_BIN" maintain -c "$WORK/hist_d.ini" >"$WORK/r4.out" 2>&1 || { cat "$WORK/r4.out"; fail "retention drop failed"; }
assert_eq "$(nparts hist)" $((total - 7)) "dropped partition detached"
assert_eq "$(q "SELECT count(*) FROM pg_class WHERE relname LIKE 'hist\_p%' AND relkind = 'r'")" $((tables_before - 1)) "partition dropped"

# Retention with a DEFAULT partition uses a short locked DETACH.
write_job "$WORK/items_r.ini" items id 100 "premake = 1" "default_partition = true" "${base[@]}" "[maintain]" "retention = 40" "retention_action = drop"
"$PGSHIFT_BIN" maintain -c "$WORK/items_r.ini" >"$WORK/r5.out" 2>&1 || { cat "$WORK/r5.out"; fail "locked detach failed"; }
cat "$WORK/r5.out"
grep -q "locked DETACH" "$WORK/r5.out" || fail "detach with DEFAULT was not the locked form"
# max id 9000 -> slot 90; keep 40 slots -> partitions ending at or below 5000 go.
assert_eq "$(q "SELECT count(*) FROM items WHERE id < 5000")" 0 "old items dropped"
assert_eq "$(q "SELECT to_regclass('items_p600') IS NULL")" t "items_p600 dropped"

# retention_action = file: COPY to a CSV file in archive_dir, then DROP.
mkdir -p "$WORK/arch"
write_job "$WORK/items_f.ini" items id 100 "premake = 1" "default_partition = true" "${base[@]}" "[maintain]" "retention = 30" "retention_action = file" "archive_dir = $WORK/arch"
"$PGSHIFT_BIN" maintain -c "$WORK/items_f.ini" >"$WORK/r6.out" 2>&1 || { cat "$WORK/r6.out"; fail "retention to file failed"; }
cat "$WORK/r6.out"
grep -q "^file     items_p5000 .*COPY to $WORK/arch/public.items_p5000.csv, then DROP" "$WORK/r6.out" || fail "file action not announced"
assert_eq "$(wc -l <"$WORK/arch/public.items_p5000.csv")" 7 "header and 6 rows in the file"
head -1 "$WORK/arch/public.items_p5000.csv" | grep -q "^id,v,v2$" || fail "CSV header"
assert_eq "$(q "SELECT to_regclass('items_p5000') IS NULL AND to_regclass('items_p5100') IS NULL")" t "archived partitions dropped"
# A run stopped between the detach and the DROP is finished by the next one.
sql -c "CREATE TABLE items_p5200 (LIKE items)" -c "INSERT INTO items_p5200 (id, v) VALUES (5201, 'left')" \
    -c "COMMENT ON TABLE items_p5200 IS 'pgshift maintain: archiving to $WORK/arch/public.items_p5200.csv'"
"$PGSHIFT_BIN" maintain -c "$WORK/items_f.ini" >"$WORK/r7.out" 2>&1 || { cat "$WORK/r7.out"; fail "finishing an interrupted file archive failed"; }
grep -q "^file     items_p5200  finishing an interrupted run" "$WORK/r7.out" || { cat "$WORK/r7.out"; fail "interrupted archive not finished"; }
assert_eq "$(tail -1 "$WORK/arch/public.items_p5200.csv")" "5201,left," "row of the interrupted archive in its file"
assert_eq "$(q "SELECT to_regclass('items_p5200') IS NULL")" t "interrupted archive's table dropped"
