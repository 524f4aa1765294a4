#!/usr/bin/env bash
# pgshift maintain --handoff partman (pg_partman 4.x, Debian's
# postgresql-15-partman): refused with exit 3 and the fix when the extension
# is missing, before cutover, for LIST partitioning and for partition names
# pg_partman would not find; --dry-run prints and writes nothing; the real
# hand-off moves DEFAULT rows first, registers the converted table, and
# pg_partman's run_maintenance() then premakes and applies retention; a
# second hand-off changes nothing, a changed premake only updates
# part_config; plain `maintain` leaves premake and retention to pg_partman.
. "$(dirname "$0")/lib.sh"

[ -f "$(pg_config --sharedir)/extension/pg_partman.control" ] ||
  fail "pg_partman is not installed for PostgreSQL $(pg_config --version); run scripts/deps.sh (postgresql-15-partman)"

sql <<'SQL'
CREATE TABLE ev (id bigserial PRIMARY KEY, at timestamptz NOT NULL, v text);
-- Six months of rows, up to now (UTC months).
INSERT INTO ev (at, v)
  SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - m * interval '1 month'
         + d * interval '1 day', 'm' || m
  FROM generate_series(0, 5) m, generate_series(0, 9) d;
-- Hand-made sets: pgshift-style hourly names (pg_partman wants HH24MI) and LIST.
CREATE TABLE hr (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE hr_p2026_11_21_09 PARTITION OF hr FOR VALUES FROM ('2026-11-21 09:00+00') TO ('2026-11-21 10:00+00');
CREATE TABLE li (k int NOT NULL) PARTITION BY LIST (k);
CREATE TABLE li_1 PARTITION OF li FOR VALUES IN (1);
SQL
job=("premake = 2" "default_partition = true" "[cutover]" "mode = manual" "reverse = off")
write_job "$WORK/ev.ini" ev at "1 month" "${job[@]}" "[maintain]" "retention = 3" \
  "retention_action = archive" "archive_schema = ev_archive"
write_job "$WORK/hr.ini" hr at "1 hour"
write_job "$WORK/li.ini" li k 100

# expect_exit3 INI PATTERN: maintain --handoff partman exits 3 and says PATTERN.
expect_exit3() {
  local rc=0
  "$PGSHIFT_BIN" maintain -c "$WORK/$1" --handoff partman >"$WORK/e.out" 2>&1 || rc=$?
  cat "$WORK/e.out"
  assert_eq "$rc" 3 "exit code of the refused hand-off ($1)"
  grep -q -- "$2" "$WORK/e.out" || fail "refusal of $1 does not say: $2"
}

expect_exit3 hr.ini "CREATE EXTENSION pg_partman"
sql -c "CREATE SCHEMA partman" -c "CREATE EXTENSION pg_partman SCHEMA partman"
expect_exit3 li.ini "partitioned by LIST"
expect_exit3 hr.ini "hr_p2026_11_21_09: pg_partman expects hr_p2026_11_21_0900"

# Not converted yet: the job streams into the shadow.
"$PGSHIFT_BIN" run -c "$WORK/ev.ini" >"$WORK/run.out" 2>&1 &
run_pid=$!
wait_for phase_is ev sync || { cat "$WORK/run.out"; fail "ev never reached sync"; }
expect_exit3 ev.ini "has not cut over yet"
"$PGSHIFT_BIN" cutover -c "$WORK/ev.ini"
wait "$run_pid" || { cat "$WORK/run.out"; fail "ev run failed"; }
phase_is ev done || fail "ev not cut over"

# A row older than every partition waits in DEFAULT; the hand-off moves it first.
sql -c "INSERT INTO ev (at, v) VALUES (now() - interval '2 years', 'stray')"
stray=$(q "SELECT 'ev_p' || to_char(now() AT TIME ZONE 'UTC' - interval '2 years', 'YYYY_MM')")
month() { q "SELECT 'ev_p' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + $1 * interval '1 month', 'YYYY_MM')"; }
snapshot() { q "SELECT string_agg(c.relname || ':' || pg_get_expr(c.relpartbound, c.oid), ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'ev'::regclass"; }
nparts() { q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'ev'::regclass"; }
rows_sum() { q "SELECT count(*) || '/' || sum(hashtext(t::text)::bigint) FROM ev t"; }
before=$(snapshot)
sum0=$(rows_sum)

# --dry-run prints every step and writes nothing.
"$PGSHIFT_BIN" maintain -c "$WORK/ev.ini" --handoff partman --dry-run >"$WORK/dry.out" 2>&1 || { cat "$WORK/dry.out"; fail "dry run failed"; }
cat "$WORK/dry.out"
grep -q "^move     $stray  1 row(s) from ev_default" "$WORK/dry.out" || fail "dry run does not announce the DEFAULT move"
grep -q "^register public.ev  SELECT partman.create_parent(p_parent_table := 'public.ev'" "$WORK/dry.out" || fail "dry run does not print create_parent"
grep -q "retention = '3 months'" "$WORK/dry.out" || fail "dry run does not map retention"
grep -q "retention_schema = 'ev_archive'" "$WORK/dry.out" || fail "dry run does not map the archive schema"
assert_eq "$(snapshot)" "$before" "dry run changed partitions"
assert_eq "$(q "SELECT count(*) FROM partman.part_config")" 0 "dry run registered the table"
assert_eq "$(q "SELECT count(*) FROM ev_default")" 1 "dry run moved the row"

# The hand-off.
"$PGSHIFT_BIN" maintain -c "$WORK/ev.ini" --handoff partman >"$WORK/h1.out" 2>&1 || { cat "$WORK/h1.out"; fail "hand-off failed"; }
cat "$WORK/h1.out"
assert_eq "$(q "SELECT premake || ' ' || retention || ' ' || retention_schema || ' ' || infinite_time_partitions || ' ' || datetime_string FROM partman.part_config WHERE parent_table = 'public.ev'")" \
  "2 3 months ev_archive true YYYY_MM" "part_config"
assert_eq "$(q "SELECT tableoid::regclass FROM ev WHERE v = 'stray'")" "$stray" "stray row moved into its partition"
assert_eq "$(q "SELECT count(*) FROM ev_default")" 0 "pg_partman's DEFAULT partition is empty"
assert_eq "$(rows_sum)" "$sum0" "rows unchanged by the hand-off"
assert_eq "$(q "SELECT to_regclass('$(month -5)') IS NOT NULL")" t "old partitions still attached before run_maintenance"

# Idempotent: a second hand-off changes nothing.
after=$(snapshot)
"$PGSHIFT_BIN" maintain -c "$WORK/ev.ini" --handoff partman >"$WORK/h2.out" 2>&1 || { cat "$WORK/h2.out"; fail "second hand-off failed"; }
grep -q "^skip     public.ev  already handed off" "$WORK/h2.out" || { cat "$WORK/h2.out"; fail "second hand-off was not a no-op"; }
assert_eq "$(snapshot)" "$after" "second hand-off changed partitions"

# pg_partman's maintenance now premakes: drop the two newest (empty)
# partitions, months +2 (premade by pgshift) and +3 (made by create_parent),
# and watch run_maintenance() make month +2 again with the same bound.
newest=$(month 2)
bound=$(q "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = '$newest'")
assert_eq "$(q "SELECT max(relname) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = 'ev'::regclass AND relname <> 'ev_default'")" "$(month 3)" "create_parent added the month after the newest"
sql -c "ALTER TABLE ev DETACH PARTITION $newest" -c "DROP TABLE $newest" \
    -c "ALTER TABLE ev DETACH PARTITION $(month 3)" -c "DROP TABLE $(month 3)"
sql -c "SELECT partman.run_maintenance('public.ev')"
assert_eq "$(q "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = '$newest'")" "$bound" "run_maintenance premade $newest"

# ... and applied retention (3 months, archive schema): the stray partition
# and months -5 and -4 moved to ev_archive.
assert_eq "$(q "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'ev_archive'")" \
  "$stray,$(month -5),$(month -4)" "partitions archived by pg_partman"
assert_eq "$(q "SELECT to_regclass('$(month -3)') IS NOT NULL")" t "month -3 kept"

# A larger premake in the job file only updates part_config; run_maintenance follows it.
write_job "$WORK/ev3.ini" ev at "1 month" "premake = 3" "default_partition = true" "[cutover]" "mode = manual" \
  "reverse = off" "[maintain]" "retention = 3" "retention_action = archive" "archive_schema = ev_archive"
n0=$(nparts)
"$PGSHIFT_BIN" maintain -c "$WORK/ev3.ini" --handoff partman >"$WORK/h3.out" 2>&1 || { cat "$WORK/h3.out"; fail "premake update failed"; }
grep -q "^config   public.ev  UPDATE partman.part_config SET premake = 3 WHERE" "$WORK/h3.out" || { cat "$WORK/h3.out"; fail "premake update not printed"; }
sql -c "SELECT partman.run_maintenance('public.ev')"
[ "$(nparts)" -gt "$n0" ] || fail "run_maintenance did not premake for premake = 3"

# Plain maintain leaves premake and retention to pg_partman.
after=$(snapshot)
"$PGSHIFT_BIN" maintain -c "$WORK/ev.ini" >"$WORK/m.out" 2>&1 || { cat "$WORK/m.out"; fail "maintain after hand-off failed"; }
grep -q "pg_partman (schema partman) manages public.ev" "$WORK/m.out" || { cat "$WORK/m.out"; fail "maintain does not defer to pg_partman"; }
assert_eq "$(snapshot)" "$after" "maintain after hand-off changed partitions"

# An integer set without a DEFAULT partition keeps having none.
sql -c "CREATE TABLE it (id bigint NOT NULL) PARTITION BY RANGE (id)" \
    -c "CREATE TABLE it_p0 PARTITION OF it FOR VALUES FROM (0) TO (100)" \
    -c "CREATE TABLE it_p100 PARTITION OF it FOR VALUES FROM (100) TO (200)" \
    -c "INSERT INTO it SELECT generate_series(0, 150)"
write_job "$WORK/it.ini" it id 100 "premake = 1"
"$PGSHIFT_BIN" maintain -c "$WORK/it.ini" --handoff partman >"$WORK/i.out" 2>&1 || { cat "$WORK/i.out"; fail "integer hand-off failed"; }
cat "$WORK/i.out"
grep -q "^keep     public.it  without a DEFAULT partition" "$WORK/i.out" || fail "integer hand-off does not say the table keeps no DEFAULT"
assert_eq "$(q "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'it'::regclass AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'")" 0 "no DEFAULT partition on it"
assert_eq "$(q "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'it_p200'")" "FOR VALUES FROM ('200') TO ('300')" "create_parent made it_p200"
assert_eq "$(q "SELECT partition_interval FROM partman.part_config WHERE parent_table = 'public.it'")" 100 "integer interval registered"
