#!/usr/bin/env bash
# LIST and HASH strategies end to end with `pgshift run` under a write load:
# LIST on a text column with values discovered from the data (hostile values:
# spaces, quotes, capitals, NULL) plus DEFAULT, LIST on an integer column with
# configured values, HASH on an integer key. Predictable partition names are
# checked, rows compared with the old table after a manual cutover.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE SCHEMA "Shop Floor";
CREATE TABLE "Shop Floor"."user" (
    id bigserial PRIMARY KEY,
    region text NOT NULL,
    tier int NOT NULL,
    note text
);
CREATE INDEX ON "Shop Floor"."user" (region);
INSERT INTO "Shop Floor"."user" (region, tier, note)
  SELECT (ARRAY['EU', 'North America', 'it''s', 'asia-pacific'])[1 + i % 4], i % 5, 'n' || i
  FROM generate_series(1, 2000) i;
CREATE TABLE public.tiers (LIKE "Shop Floor"."user" INCLUDING ALL);
INSERT INTO public.tiers SELECT * FROM "Shop Floor"."user";
CREATE TABLE public.hashed (id int PRIMARY KEY, v text);
INSERT INTO public.hashed SELECT i, 'v' || i FROM generate_series(1, 2000) i;
SQL

# run_job NAME INI TABLE SHADOW OLD WRITES_SQL
run_job() {
  local name=$1 ini=$2 table=$3 shadow=$4 old=$5 writes=$6
  "$PGSHIFT_BIN" plan -c "$ini" >"$WORK/$name.plan" || { cat "$WORK/$name.plan"; fail "$name: plan"; }
  "$PGSHIFT_BIN" run -c "$ini" >"$WORK/$name.out" 2>&1 &
  local pid=$! n=0
  wait_for phase_is "$name" sync || { cat "$WORK/$name.out"; fail "$name never reached sync"; }
  # A small write load while syncing.
  while [ $n -lt 40 ]; do
    n=$((n + 1))
    psql -X -q -v ON_ERROR_STOP=1 -c "$writes" >/dev/null || fail "$name: write load"
  done
  WAIT_SECS=60 wait_for same_rows "$table" "$shadow" || fail "$name: shadow differs"
  "$PGSHIFT_BIN" cutover -c "$ini"
  local rc=0
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || { cat "$WORK/$name.out"; fail "$name run failed (exit $rc)"; }
  assert_eq "$(q "SELECT relkind FROM pg_class WHERE oid = '$table'::regclass")" p "$name partitioned"
  same_rows "$table" "$old" || fail "$name: old and new differ"
}

# LIST, values discovered from the data.
write_job "$WORK/regions.ini" '"Shop Floor"."user"' region "" "strategy = list" "[job]" "name = regions" "[cutover]" "mode = manual" "reverse = false"
sed -i '/^interval = $/d' "$WORK/regions.ini"
run_job regions "$WORK/regions.ini" '"Shop Floor"."user"' '"Shop Floor".user__pgshift' '"Shop Floor".user__pgshift_old' \
  "INSERT INTO \"Shop Floor\".\"user\" (region, tier) VALUES ('EU', 1), ('Mars', 2);
   UPDATE \"Shop Floor\".\"user\" SET region = 'North America' WHERE id = (SELECT min(id) FROM \"Shop Floor\".\"user\" WHERE region = 'EU');
   DELETE FROM \"Shop Floor\".\"user\" WHERE id = (SELECT max(id) FROM \"Shop Floor\".\"user\" WHERE region = 'it''s');"
grep -q 'partitioned by LIST (region)' "$WORK/regions.plan" || fail "regions: plan header"
parts=$(q "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = '\"Shop Floor\".\"user\"'::regclass")
assert_eq "$parts" "user_default,user_l_asia_pacific,user_l_eu,user_l_it_s,user_l_north_america" "LIST partition names"
assert_eq "$(q "SELECT count(*) FROM \"Shop Floor\".user_default")" "$(q "SELECT count(*) FROM \"Shop Floor\".\"user\" WHERE region = 'Mars'")" "unknown values in DEFAULT"

# LIST, configured integer values (the rest in DEFAULT).
write_job "$WORK/tiers.ini" public.tiers tier "" "strategy = list" "values = 0, 1, 2" "[job]" "name = tiers" "[cutover]" "mode = manual" "reverse = false"
sed -i '/^interval = $/d' "$WORK/tiers.ini"
run_job tiers "$WORK/tiers.ini" public.tiers public.tiers__pgshift public.tiers__pgshift_old \
  "INSERT INTO public.tiers (region, tier) VALUES ('EU', 1), ('EU', 4);
   UPDATE public.tiers SET tier = 0 WHERE id = (SELECT min(id) FROM public.tiers WHERE tier = 3);"
assert_eq "$(q "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'public.tiers'::regclass")" \
  "tiers_default,tiers_l_0,tiers_l_1,tiers_l_2" "configured LIST partitions"
assert_eq "$(q "SELECT count(*) FROM public.tiers_default WHERE tier < 3")" 0 "DEFAULT holds only other values"

# HASH on the primary key.
write_job "$WORK/hashed.ini" public.hashed id "" "strategy = hash" "modulus = 4" "[job]" "name = hashed" "[cutover]" "mode = manual" "reverse = false"
sed -i '/^interval = $/d' "$WORK/hashed.ini"
run_job hashed "$WORK/hashed.ini" public.hashed public.hashed__pgshift public.hashed__pgshift_old \
  "INSERT INTO public.hashed SELECT max(id) + 1, 'new' FROM public.hashed;
   UPDATE public.hashed SET v = v || '+' WHERE id % 97 = 0;
   DELETE FROM public.hashed WHERE id = (SELECT min(id) FROM public.hashed);"
assert_eq "$(q "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'public.hashed'::regclass")" \
  "hashed_h0,hashed_h1,hashed_h2,hashed_h3" "HASH partition names"
assert_eq "$(q "SELECT count(*) FROM public.hashed_h0")" "$(q "SELECT count(*) FROM public.hashed WHERE satisfies_hash_partition('public.hashed'::regclass, 4, 0, id)")" "rows routed by hash"
