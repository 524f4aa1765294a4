#!/usr/bin/env bash
# Two-level partitioning with `pgshift run` under a write load:
#   RANGE (1 month) -> HASH (tenant, modulus 3) on an event table with
#   hostile names, and LIST (region, values from the data) -> RANGE (1 month).
# Checks the plan's layout, the predictable names of both levels, that rows
# sit in the right leaves, that the primary key is widened with both
# partition columns, and that new and old tables hold the same rows after
# the cutover; `maintain` premakes new months with their sub-partitions.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE SCHEMA "Multi Tenant";
CREATE TABLE "Multi Tenant"."Events" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "timestamp" timestamptz NOT NULL,
    "user" int NOT NULL,
    body jsonb
) WITH (fillfactor = 90);
CREATE INDEX "Events by user" ON "Multi Tenant"."Events" ("user", "timestamp");
INSERT INTO "Multi Tenant"."Events" ("timestamp", "user", body)
  SELECT timestamptz '2025-01-01 00:00+00' + i * interval '1 hour', i % 50, jsonb_build_object('i', i)
  FROM generate_series(1, 2000) i;

CREATE TABLE public.sales (
    id bigserial PRIMARY KEY,
    region text NOT NULL,
    sold_on date NOT NULL,
    amount numeric(10, 2) NOT NULL
);
INSERT INTO public.sales (region, sold_on, amount)
  SELECT (ARRAY['EU', 'North America', 'APAC'])[1 + i % 3], date '2025-01-01' + i % 80, i
  FROM generate_series(1, 3000) i;
SQL

# run_job NAME INI LIVE OLD WRITES: run with automatic cutover while WRITES
# runs in a loop; after the cutover the reverse stream keeps the old table
# current, so once the writes stop both must hold the same rows.
run_job() {
  local name=$1 ini=$2 live=$3 old=$4 writes=$5 pid writer
  "$PGSHIFT_BIN" plan -c "$ini" >"$WORK/$name.plan" || { cat "$WORK/$name.plan"; fail "$name: plan"; }
  "$PGSHIFT_BIN" plan -c "$ini" --format json >"$WORK/$name.json"
  rm -f "$WORK/stop"
  ( while [ ! -f "$WORK/stop" ]; do
      psql -X -q -v ON_ERROR_STOP=1 -c "$writes" >/dev/null || { echo failed >"$WORK/writes.failed"; break; }
      sleep 0.02
    done ) &
  writer=$!
  sleep 0.5
  "$PGSHIFT_BIN" run -c "$ini" >"$WORK/$name.out" 2>&1 &
  pid=$!
  wait_for phase_is "$name" reverse || { tail -30 "$WORK/$name.out"; fail "$name: no cutover"; }
  sleep 1
  touch "$WORK/stop"
  wait "$writer"
  [ ! -f "$WORK/writes.failed" ] || fail "$name: the write load failed"
  assert_eq "$(q "SELECT relkind FROM pg_class WHERE oid = '$live'::regclass")" p "$name partitioned"
  WAIT_SECS=30 wait_for same_rows "$live" "$old" || fail "$name: old and new tables differ"
  "$PGSHIFT_BIN" finalize -c "$ini" >/dev/null
  wait "$pid" || { tail -30 "$WORK/$name.out"; fail "$name: run did not end after finalize"; }
}

# leaves PARENT: the partitions under PARENT (any level), sorted.
tree() {
  q "SELECT string_agg(relid::regclass::text || ':' || level || ':' || isleaf, ' ' ORDER BY relid::regclass::text)
       FROM pg_partition_tree('$1') WHERE level > 0"
}

# 1. RANGE -> HASH.
write_job "$WORK/events.ini" '"Multi Tenant"."Events"' '"timestamp"' "1 month" "premake = 1" \
  "[subpartitioning]" "strategy = hash" 'column = "user"' "modulus = 3" \
  "[job]" "name = events"
run_job events "$WORK/events.ini" '"Multi Tenant"."Events"' '"Multi Tenant"."Events__pgshift_old"' \
  "INSERT INTO \"Multi Tenant\".\"Events\" (\"timestamp\", \"user\") VALUES (timestamptz '2025-01-01 00:00+00' + random() * interval '80 days', (random() * 60)::int);
   UPDATE \"Multi Tenant\".\"Events\" SET \"user\" = \"user\" + 1, body = '{}' WHERE id = 1 + (random() * 1900)::int;
   DELETE FROM \"Multi Tenant\".\"Events\" WHERE id = (SELECT min(id) FROM \"Multi Tenant\".\"Events\");"
grep -q 'partitioned by RANGE ("timestamp"), each partition by HASH ("user")' "$WORK/events.plan" ||
  grep -q 'partitioned by RANGE (timestamp), each partition by HASH (user)' "$WORK/events.plan" || fail "events: plan header"
grep -q 'PRIMARY KEY ("id", "timestamp", "user")' "$WORK/events.plan" || fail "events: PK not widened with both columns"
assert_eq "$(jq -r '.partitions[0].subpartitions | map(.name) | join(",")' "$WORK/events.json")" \
  "Events_p2025_01_h0,Events_p2025_01_h1,Events_p2025_01_h2" "events: planned sub-partition names"
t=$(tree '"Multi Tenant"."Events"')
for want in '"Multi Tenant"."Events_p2025_02":1:false' '"Multi Tenant"."Events_p2025_02_h2":2:true'; do
  case " $t " in *" $want "*) ;; *) fail "events: $want missing from the tree: $t" ;; esac
done
assert_eq "$(q "SELECT count(*) FROM pg_partition_tree('\"Multi Tenant\".\"Events\"') t JOIN pg_class c ON c.oid = t.relid
               WHERE t.isleaf AND NOT (c.reloptions @> '{fillfactor=90}')")" 0 "events: storage parameters on every leaf"
assert_eq "$(q "SELECT count(*) FROM \"Multi Tenant\".\"Events_p2025_02_h1\"
               WHERE NOT satisfies_hash_partition('\"Multi Tenant\".\"Events_p2025_02\"'::regclass, 3, 1, \"user\")
                  OR \"timestamp\" < '2025-02-01 00:00+00' OR \"timestamp\" >= '2025-03-01 00:00+00'")" 0 "events: rows in the right leaf"
assert_eq "$(q "SELECT indexrelid::regclass FROM pg_index WHERE indrelid = '\"Multi Tenant\".\"Events\"'::regclass AND indisprimary")" \
  '"Multi Tenant"."Events_pkey"' "events: original primary key name"
# The identity continues after the cutover.
sql -c "INSERT INTO \"Multi Tenant\".\"Events\" (\"timestamp\", \"user\") VALUES ('2025-02-10', 7)"
# maintain premakes the next months with their hash sub-partitions.
sed -i 's/^premake = 1$/premake = 3/' "$WORK/events.ini"
"$PGSHIFT_BIN" maintain -c "$WORK/events.ini" >"$WORK/maintain.out" 2>&1 || { cat "$WORK/maintain.out"; fail "events: maintain"; }
last=$(date -u -d "$(date -u +%Y-%m-01) +3 months" +%Y_%m)
assert_eq "$(q "SELECT string_agg(relid::regclass::text, ',' ORDER BY relid::regclass::text) FROM pg_partition_tree('\"Multi Tenant\".\"Events_p$last\"')")" \
  "\"Multi Tenant\".\"Events_p$last\",\"Multi Tenant\".\"Events_p${last}_h0\",\"Multi Tenant\".\"Events_p${last}_h1\",\"Multi Tenant\".\"Events_p${last}_h2\"" \
  "events: premade month with its sub-partitions"

# 2. LIST -> RANGE.
write_job "$WORK/sales.ini" public.sales region "" "strategy = list" "premake = 1" \
  "[subpartitioning]" "strategy = range" "column = sold_on" "interval = 1 month" \
  "[job]" "name = sales"
sed -i '/^interval = $/d' "$WORK/sales.ini"
run_job sales "$WORK/sales.ini" public.sales public.sales__pgshift_old \
  "INSERT INTO public.sales (region, sold_on, amount) VALUES ((ARRAY['EU', 'APAC', 'Mars'])[1 + (random() * 2)::int], date '2025-01-01' + (random() * 70)::int, 1);
   UPDATE public.sales SET region = 'EU', sold_on = sold_on + 31 WHERE id = 1 + (random() * 2900)::int AND sold_on < '2025-02-15';
   DELETE FROM public.sales WHERE id = (SELECT max(id) FROM public.sales WHERE region = 'APAC');"
t=$(tree public.sales)
for want in sales_l_eu:1:false sales_l_eu_p2025_01:2:true sales_l_north_america_p2025_03:2:true sales_default_p2025_02:2:true; do
  case " $t " in *" $want "*) ;; *) fail "sales: $want missing from the tree: $t" ;; esac
done
# Values first seen after the plan (the load may add 'Mars' before it) go to DEFAULT.
assert_eq "$(q "SELECT count(*) FROM public.sales_default WHERE region IN ('EU', 'North America', 'APAC')")" 0 "sales: DEFAULT holds only unlisted values"
assert_eq "$(q "SELECT count(*) FROM public.sales_l_eu_p2025_02 WHERE region <> 'EU' OR sold_on < '2025-02-01' OR sold_on >= '2025-03-01'")" 0 "sales: rows in the right leaf"
grep -q 'PRIMARY KEY ("id", "region", "sold_on")' "$WORK/sales.plan" || fail "sales: PK not widened with both columns"
