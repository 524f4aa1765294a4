#!/usr/bin/env bash
# `plan` prints checks, DDL (also of a rollback), steps and estimates from a
# measured sample in text, sql and json, and writes nothing: no relation,
# slot, publication or origin appears, no temporary table is left and the
# source's write counters do not move.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE TABLE "user" (id bigserial PRIMARY KEY, "timestamp" timestamptz NOT NULL, name text);
INSERT INTO "user" ("timestamp", name)
  SELECT timestamptz '2025-01-01' + i * interval '1 hour', 'n' || i FROM generate_series(1, 5000) i;
CREATE INDEX user_name_idx ON "user" (name);
SQL
write_job "$WORK/job.ini" '"user"' '"timestamp"' "1 month" "premake = 2"
sleep 1  # let the statistics collector settle
counters() { q "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = 'user'"; }
q "SELECT pg_stat_force_next_flush()" >/dev/null
before_rel=$(q "SELECT count(*) FROM pg_class")
before_cnt=$(counters)
before_lsn=$(q "SELECT pg_current_wal_insert_lsn()")

"$PGSHIFT_BIN" plan -c "$WORK/job.ini" >"$WORK/plan.txt"
"$PGSHIFT_BIN" plan -c "$WORK/job.ini" --format sql >"$WORK/plan.sql"
"$PGSHIFT_BIN" plan -c "$WORK/job.ini" --format json >"$WORK/plan.json"

grep -q 'PASS  replica identity' "$WORK/plan.txt" || fail "checks missing"
grep -q 'PRIMARY KEY ("id", "timestamp")' "$WORK/plan.txt" || fail "widened PK missing"
grep -q 'is widened to' "$WORK/plan.txt" || fail "widening note missing"
grep -q 'no index starts with it, so min/max read the whole table' "$WORK/plan.txt" || fail "bounds source missing"
grep -q 'CREATE TABLE "public"."user_p2025_01" PARTITION OF' "$WORK/plan.sql" || fail "partition DDL missing"
grep -q 'CREATE INDEX "user_name_idx__pgshift"' "$WORK/plan.sql" || fail "index DDL missing"
assert_eq "$(q "SELECT (\$j\$$(cat "$WORK/plan.json")\$j\$::jsonb ->> 'ok')")" true "json ok"
assert_eq "$(q "SELECT jsonb_array_length(\$j\$$(cat "$WORK/plan.json")\$j\$::jsonb -> 'partitions') > 5")" t "json partitions"
# Estimates come from a sample copied for real (into a temporary table that
# is rolled back): rows from the statistics or the sample, bytes and time
# per row measured.
assert_eq "$(jq -r '.estimates.measured' "$WORK/plan.json")" true "estimates measured"
assert_eq "$(jq -r '.estimates.sample_rows > 0 and .estimates.copy_seconds > 0 and .estimates.new_table_bytes > 0' "$WORK/plan.json")" true "sample figures"
assert_eq "$(jq -r '.estimates.rows' "$WORK/plan.json")" 5000 "rows (from the statistics)"
grep -q 'copy time at least ~' "$WORK/plan.txt" || fail "copy time missing from the text plan"
grep -q 'Rollback transaction' "$WORK/plan.txt" || fail "rollback DDL missing"
assert_eq "$(jq -r '.ddl.rollback | length > 2' "$WORK/plan.json")" true "json rollback DDL"

# The SQL the plan prints is the SQL run uses: it must be valid.
sql -c "BEGIN" -f "$WORK/plan.sql" -c "ROLLBACK" >/dev/null

q "SELECT pg_stat_force_next_flush()" >/dev/null
assert_eq "$(q "SELECT count(*) FROM pg_class")" "$before_rel" "relations"
assert_eq "$(counters)" "$before_cnt" "source write counters"
assert_no_job_objects
assert_eq "$(q "SELECT to_regclass('pgshift.jobs') IS NULL")" t "job state"
assert_eq "$(q "SELECT count(*) FROM pg_class WHERE relpersistence = 't'")" 0 "temporary tables"
# The catalog is read in a READ ONLY transaction; only the rolled-back
# temporary table of the sample writes WAL (its catalog rows, a few kB).
echo "WAL moved by $(q "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$before_lsn')") bytes (other activity)"
