#!/usr/bin/env bash
# Five realistic schemas with hostile names (spaces, quotes, capitals,
# reserved words). Each is converted by `pgshift run` under a small write
# load through a manual cutover; the converted table's catalog
# (sql/catalog_snapshot.sql: columns, constraints, incoming foreign keys,
# indexes by name and definition, policies, grants, triggers, comments,
# owner, RLS flags, replica identity, storage parameters, views, statistics,
# publications, sequence next values) must equal the source's before, except
# for the widening of unique keys that the plan reports. Three of them are
# then rolled back (the plain table's catalog must be exactly the original)
# and cut over again. Also: widen_unique = false, an incoming foreign key on
# a key without the partition column and a rewrite rule are refused with
# exit 3 and a FAIL check; a materialized view is a WARN.
. "$(dirname "$0")/lib.sh"
SNAP="$PGSHIFT_SRC/tests/integration/sql/catalog_snapshot.sql"

psql -X -q -d postgres -c 'DROP ROLE IF EXISTS "Chat Reader"' -c 'CREATE ROLE "Chat Reader"' 2>/dev/null ||
  psql -X -q -d postgres -c 'CREATE ROLE "Chat Reader"' 2>/dev/null || true
psql -X -q -d postgres -c 'DROP ROLE IF EXISTS "App Owner"' -c 'CREATE ROLE "App Owner"' 2>/dev/null ||
  psql -X -q -d postgres -c 'CREATE ROLE "App Owner"' 2>/dev/null || true

sql <<'SQL'
-- 1. event log: jsonb payload, FK to a parent with ON DELETE CASCADE.
CREATE SCHEMA "Event Log";
CREATE TABLE "Event Log".accounts (id int PRIMARY KEY, name text);
INSERT INTO "Event Log".accounts SELECT i, 'acct ' || i FROM generate_series(1, 20) i;
CREATE TABLE "Event Log"."user events" (
    id bigserial PRIMARY KEY,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    account_id int NOT NULL REFERENCES "Event Log".accounts (id) ON DELETE CASCADE,
    payload jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT "payload is object" CHECK (jsonb_typeof(payload) = 'object')
);
CREATE INDEX "Events By Payload" ON "Event Log"."user events" USING gin (payload jsonb_path_ops);
CREATE INDEX ON "Event Log"."user events" (account_id, "timestamp" DESC);
COMMENT ON TABLE "Event Log"."user events" IS 'what users did';
COMMENT ON COLUMN "Event Log"."user events".payload IS 'event body';
COMMENT ON INDEX "Event Log"."Events By Payload" IS 'containment search';
COMMENT ON CONSTRAINT "payload is object" ON "Event Log"."user events" IS 'objects only';
INSERT INTO "Event Log"."user events" ("timestamp", account_id, payload)
  SELECT timestamptz '2025-01-01 00:00+00' + i * interval '5 hours', 1 + i % 20,
         jsonb_build_object('i', i, 'kind', 'k' || i % 3)
  FROM generate_series(1, 1000) i;
CREATE VIEW "Event Log"."Recent Events" WITH (security_barrier = true) AS
  SELECT id, "timestamp", payload FROM "Event Log"."user events" WHERE id > 10;

-- 2. GPS fixes: stored generated column, GiST, partial index, incoming FK on
--    a key that contains the partition column.
CREATE SCHEMA gps;
CREATE TABLE gps."Fixes" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at timestamp NOT NULL,
    lat float8 NOT NULL,
    lon float8 NOT NULL,
    speed real,
    pos point GENERATED ALWAYS AS (point(lon, lat)) STORED,
    UNIQUE (id, recorded_at)
);
CREATE INDEX fixes_pos_gist ON gps."Fixes" USING gist (pos);
CREATE INDEX fixes_fast ON gps."Fixes" (recorded_at) WHERE speed > 30;
CREATE INDEX fixes_box ON gps."Fixes" USING gist (box(pos, pos));
CREATE INDEX fixes_brin ON gps."Fixes" USING brin (recorded_at);
CREATE STATISTICS gps."Fix Stats" (ndistinct, dependencies) ON lat, lon FROM gps."Fixes";
COMMENT ON STATISTICS gps."Fix Stats" IS 'lat/lon';
CREATE STATISTICS gps.fix_speed ON (speed * 2) FROM gps."Fixes";
INSERT INTO gps."Fixes" (recorded_at, lat, lon, speed)
  SELECT timestamp '2025-01-01' + i * interval '1 hour', 48 + i % 10 * 0.01, 2 + i % 7 * 0.01, i % 60
  FROM generate_series(1, 1000) i;
CREATE TABLE gps.annotations (
    id serial PRIMARY KEY, fix_id bigint, fix_at timestamp, note text,
    CONSTRAINT "annotation fix" FOREIGN KEY (fix_id, fix_at) REFERENCES gps."Fixes" (id, recorded_at)
);
INSERT INTO gps.annotations (fix_id, fix_at, note) SELECT id, recorded_at, 'n' FROM gps."Fixes" WHERE id % 100 = 0;

-- 3. chat messages: RLS enabled and forced with policies, REPLICA IDENTITY
--    FULL, a trigger, grants, in a schema named by a reserved word.
CREATE SCHEMA "user";
CREATE TABLE "user"."Messages" (
    room int NOT NULL, sender text NOT NULL, sent_at timestamptz NOT NULL,
    body text, edited_at timestamptz
);
ALTER TABLE "user"."Messages" REPLICA IDENTITY FULL;
ALTER TABLE "user"."Messages" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "user"."Messages" FORCE ROW LEVEL SECURITY;
CREATE POLICY "own messages" ON "user"."Messages" USING (sender = current_user);
CREATE POLICY "no edits of old" ON "user"."Messages" AS RESTRICTIVE FOR UPDATE TO "Chat Reader"
  USING (sent_at > now() - interval '1 day') WITH CHECK (body IS NOT NULL);
CREATE FUNCTION "user".touch() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW.edited_at := now(); RETURN NEW; END$$;
CREATE TRIGGER "Touch Edited" BEFORE UPDATE ON "user"."Messages" FOR EACH ROW
  WHEN (OLD.body IS DISTINCT FROM NEW.body) EXECUTE FUNCTION "user".touch();
COMMENT ON TRIGGER "Touch Edited" ON "user"."Messages" IS 'edit time';
CREATE INDEX "Messages by room" ON "user"."Messages" (room, sent_at) INCLUDE (sender);
GRANT SELECT, INSERT ON "user"."Messages" TO "Chat Reader";
GRANT UPDATE (body) ON "user"."Messages" TO "Chat Reader";
INSERT INTO "user"."Messages"
  SELECT i % 5, 'u' || i % 3, timestamptz '2025-03-01 00:00+00' + i * interval '10 minutes', 'hello ' || i
  FROM generate_series(1, 500) i;

-- 4. orders: partial indexes, fillfactor and autovacuum settings, a NOT
--    VALID check, column storage, a publication, a reserved-word table name.
CREATE TABLE public."order" (
    id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    placed_on date NOT NULL,
    status text NOT NULL DEFAULT 'new',
    total numeric(12, 2),
    notes text
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02);
ALTER TABLE public."order" ALTER COLUMN notes SET STORAGE EXTERNAL;
ALTER TABLE public."order" ALTER COLUMN status SET STATISTICS 400;
INSERT INTO public."order" (placed_on, status, total)
  SELECT date '2024-06-01' + i % 300, CASE WHEN i % 10 = 0 THEN 'open' ELSE 'done' END, i * 1.5
  FROM generate_series(1, 1000) i;
INSERT INTO public."order" (placed_on, status, total) VALUES ('2024-07-01', 'done', -5);
ALTER TABLE public."order" ADD CONSTRAINT "total not negative" CHECK (total >= 0) NOT VALID;
CREATE INDEX order_open ON public."order" (placed_on) WHERE status = 'open';
CREATE UNIQUE INDEX order_open_total ON public."order" (id, total) WHERE status = 'open';
CREATE INDEX "Order Upper Status" ON public."order" (upper(status));
ALTER TABLE public."order" OWNER TO "App Owner";
CREATE PUBLICATION "Orders Feed" FOR TABLE public."order";

-- 5. audit log: the dedup key lacks the partition column (widened, noted).
CREATE SCHEMA audit;
CREATE TABLE audit."timestamp" (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    event_hash text NOT NULL,
    actor text,
    CONSTRAINT "audit dedup" UNIQUE (event_hash)
);
INSERT INTO audit."timestamp" (at, event_hash, actor)
  SELECT timestamptz '2025-01-01 00:00+00' + i * interval '1 day', md5(i::text), 'a' || i % 4
  FROM generate_series(1, 200) i;
SQL

# Writes while a job syncs and after its cutover: WRITES runs in a loop until
# $WORK/$name.stop exists.
start_writes() {
  local name=$1 writes=$2
  rm -f "$WORK/$name.stop"
  ( while [ ! -f "$WORK/$name.stop" ]; do
      psql -X -q -v ON_ERROR_STOP=1 -c "$writes" >/dev/null 2>>"$WORK/$name.writes.err" || echo failed >>"$WORK/$name.writes.err"
      sleep 0.05
    done ) &
  WRITES_PID=$!
}
stop_writes() {
  touch "$WORK/$1.stop"
  wait "$WRITES_PID" || true
  ! grep -q failed "$WORK/$1.writes.err" 2>/dev/null || { cat "$WORK/$1.writes.err"; fail "$1: the write load failed"; }
}
snapshot() {  # snapshot SCHEMA TABLE COLUMN OUT
  psql -X -v s="$1" -v t="$2" -v k="$3" -f "$SNAP" >"$4"
}
# same_catalog NAME SCHEMA TABLE COLUMN STATE: the catalog equals the one taken
# before the job (retried: foreign keys are validated after the swap commits).
same_catalog() {
  snapshot "$2" "$3" "$4" "$WORK/$1.$5"
  diff -u "$WORK/$1.before" "$WORK/$1.$5" >"$WORK/$1.$5.diff"
}
# rows_match LIVE OTHER: same rows, compared as text (point has no equality).
rows_match() {
  [ "$(q "SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM $1 x")" = \
    "$(q "SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM $2 x")" ]
}

# convert NAME SCHEMA TABLE COLUMN INTERVAL WRITES ROLLBACK [ini lines...]
# `pgshift run` under WRITES through a manual cutover; the converted table's
# catalog must equal the source's before (modulo the documented widening).
# With ROLLBACK = yes: rollback (the plain table's catalog must be exactly
# the original again), cutover again (the same once more), then finalize.
convert() {
  local name=$1 schema=$2 table=$3 column=$4 interval=$5 writes=$6 rollback=$7
  shift 7
  local ini="$WORK/$name.ini" qtable old pid
  qtable="$(q "SELECT format('%I.%I', '$schema', '$table')")"
  old="$(q "SELECT format('%I.%I', '$schema', '${table}__pgshift_old')")"
  write_job "$ini" "$qtable" "$column" "$interval" "premake = 1" "default_partition = true" "[job]" "name = $name" \
    "[cutover]" "mode = manual" "reverse = true" "$@"
  snapshot "$schema" "$table" "$column" "$WORK/$name.before"
  "$PGSHIFT_BIN" plan -c "$ini" --format json >"$WORK/$name.json" || { cat "$WORK/$name.json"; fail "$name: plan failed"; }
  "$PGSHIFT_BIN" plan -c "$ini" >"$WORK/$name.plan" || fail "$name: text plan failed"
  "$PGSHIFT_BIN" run -c "$ini" >"$WORK/$name.out" 2>&1 &
  pid=$!
  wait_for phase_is "$name" sync || { cat "$WORK/$name.out"; fail "$name never reached sync"; }
  start_writes "$name" "$writes"
  sleep 1
  "$PGSHIFT_BIN" cutover -c "$ini" >/dev/null
  wait_for phase_is "$name" reverse || { tail -30 "$WORK/$name.out"; fail "$name: no cutover"; }
  sleep 0.5
  stop_writes "$name"
  assert_eq "$(q "SELECT relkind FROM pg_class WHERE oid = '$qtable'::regclass")" p "$name partitioned"
  WAIT_SECS=30 wait_for rows_match "$qtable" "$old" || fail "$name: the reverse stream did not catch up"
  if ! WAIT_SECS=15 wait_for same_catalog "$name" "$schema" "$table" "$column" after; then
    cat "$WORK/$name.after.diff"; echo "--- notes of the plan:"; jq -r '.notes[]' "$WORK/$name.json"
    fail "$name: catalog differs after cutover beyond the documented widening"
  fi
  echo "ok $name: cutover under writes, $(grep -c . "$WORK/$name.before") catalog lines equal"
  if [ "$rollback" = yes ]; then
    "$PGSHIFT_BIN" rollback -c "$ini" >/dev/null || { tail -30 "$WORK/$name.out"; fail "$name: rollback"; }
    assert_eq "$(q "SELECT relkind FROM pg_class WHERE oid = '$qtable'::regclass")" r "$name plain after rollback"
    if ! WAIT_SECS=15 wait_for same_catalog "$name" "$schema" "$table" "$column" rolledback; then
      cat "$WORK/$name.rolledback.diff"; fail "$name: the rollback did not restore the catalog"
    fi
    "$PGSHIFT_BIN" cutover -c "$ini" >/dev/null
    wait_for phase_is "$name" reverse || { tail -30 "$WORK/$name.out"; fail "$name: no second cutover"; }
    if ! WAIT_SECS=15 wait_for same_catalog "$name" "$schema" "$table" "$column" again; then
      cat "$WORK/$name.again.diff"; fail "$name: catalog differs after the second cutover"
    fi
    echo "ok $name: rollback restored the original catalog, second cutover equal again"
  fi
  "$PGSHIFT_BIN" finalize -c "$ini" >/dev/null
  wait "$pid" || { tail -30 "$WORK/$name.out"; fail "$name: run did not end after finalize"; }
  rows_match "$qtable" "$old" || fail "$name: old and new differ at the end"
}

convert events "Event Log" "user events" "timestamp" "1 month" \
  "INSERT INTO \"Event Log\".\"user events\" (account_id, payload) VALUES (1 + (random() * 18)::int, '{\"w\": 1}');
   UPDATE \"Event Log\".\"user events\" SET payload = payload || '{\"u\": 1}' WHERE id = (SELECT min(id) + 7 FROM \"Event Log\".\"user events\");
   DELETE FROM \"Event Log\".\"user events\" WHERE id = (SELECT min(id) FROM \"Event Log\".\"user events\");" yes
grep -q 'primary key user events_pkey' "$WORK/events.plan" || fail "events: widening not in the plan notes"
# The view reads the new table, the FK cascades from the parent into it (and
# not into the old table, whose copy of the foreign key was dropped).
assert_eq "$(q "SELECT count(DISTINCT r.ev_class) FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
               WHERE r.ev_class = '\"Event Log\".\"Recent Events\"'::regclass
                 AND d.refobjid = '\"Event Log\".\"user events\"'::regclass")" 1 "view follows the new table"
sql -c 'DELETE FROM "Event Log".accounts WHERE id = 3'
assert_eq "$(q 'SELECT count(*) FROM "Event Log"."user events" WHERE account_id = 3')" 0 "ON DELETE CASCADE into the new table"

convert gps gps Fixes recorded_at "1 month" \
  "INSERT INTO gps.\"Fixes\" (recorded_at, lat, lon, speed) VALUES (timestamp '2025-01-01' + random() * interval '40 days', 48.5, 2.5, random() * 60);
   UPDATE gps.\"Fixes\" SET speed = speed + 1 WHERE id = 1 + (random() * 900)::int;
   DELETE FROM gps.\"Fixes\" WHERE id = (SELECT max(id) FROM gps.\"Fixes\" WHERE id % 100 <> 0);" yes
sql -c "INSERT INTO gps.annotations (fix_id, fix_at) VALUES (1, '1999-01-01')" 2>/dev/null &&
  fail "gps: incoming foreign key not enforced against the new table"
assert_eq "$(q 'SELECT convalidated FROM pg_constraint WHERE conname = $$annotation fix$$')" t "incoming FK validated"

convert chat user Messages sent_at "1 month" \
  "INSERT INTO \"user\".\"Messages\" VALUES (1 + (random() * 3)::int, 'u1', timestamptz '2025-03-02 00:00+00' + random() * interval '3 days', 'hi', NULL);
   UPDATE \"user\".\"Messages\" SET body = body || '!' WHERE room = 2 AND sent_at = (SELECT min(sent_at) FROM \"user\".\"Messages\" WHERE room = 2);
   DELETE FROM \"user\".\"Messages\" WHERE sent_at = (SELECT max(sent_at) FROM \"user\".\"Messages\");" yes
assert_eq "$(q "SELECT count(*) FROM pg_class c JOIN pg_inherits h ON h.inhrelid = c.oid
               WHERE h.inhparent = '\"user\".\"Messages\"'::regclass AND c.relreplident <> 'f'")" 0 "REPLICA IDENTITY FULL on every partition"
before_edits=$(q 'SELECT count(*) FROM "user"."Messages" WHERE edited_at IS NOT NULL')
sql -c "UPDATE \"user\".\"Messages\" SET body = 'edited' WHERE room = 1 AND sent_at = (SELECT min(sent_at) FROM \"user\".\"Messages\" WHERE room = 1)"
assert_eq "$(q 'SELECT count(*) FROM "user"."Messages" WHERE edited_at IS NOT NULL')" "$((before_edits + 1))" "trigger fires on the new table"

convert orders public order placed_on "1 month" \
  "INSERT INTO public.\"order\" (placed_on, status, total) VALUES (date '2024-06-01' + (random() * 290)::int, 'open', 10);
   UPDATE public.\"order\" SET status = 'done' WHERE id = (SELECT min(id) FROM public.\"order\" WHERE status = 'open');" no
grep -q 'fillfactor=70' "$WORK/orders.plan" || fail "orders: storage parameters not in the notes"

convert audit audit timestamp at "3 months" \
  "INSERT INTO audit.\"timestamp\" (at, event_hash, actor) VALUES (timestamptz '2025-02-01 00:00+00' + random() * interval '90 days', md5(random()::text), 'w');
   DELETE FROM audit.\"timestamp\" WHERE id = (SELECT min(id) FROM audit.\"timestamp\");" no
grep -q 'unique constraint audit dedup is widened' "$WORK/audit.plan" || fail "audit: dedup widening not noted"

# Refusals, exit 3 with a FAIL check naming the fix.
sql <<'SQL'
CREATE TABLE audit.narrow (id int PRIMARY KEY, at timestamptz NOT NULL);
CREATE TABLE audit.child (id int, narrow_id int REFERENCES audit.narrow (id));
SQL
write_job "$WORK/narrow.ini" audit.narrow at "1 month" "[job]" "name = narrow"
set +e
"$PGSHIFT_BIN" plan -c "$WORK/narrow.ini" >"$WORK/narrow.out" 2>&1
rc=$?
set -e
assert_eq "$rc" 3 "incoming FK on a narrow key refused"
grep -q 'FAIL  foreign key child_narrow_id_fkey' "$WORK/narrow.out" || { cat "$WORK/narrow.out"; fail "no FAIL check for the FK"; }
sql -c 'CREATE TABLE audit.t2 (id bigint PRIMARY KEY, at timestamptz NOT NULL, h text UNIQUE)'
write_job "$WORK/strict.ini" audit.t2 at "1 month" "widen_unique = false" "[job]" "name = strict"
set +e
"$PGSHIFT_BIN" plan -c "$WORK/strict.ini" --format json >"$WORK/strict.json" 2>&1
rc=$?
set -e
[ "$rc" = 3 ] || { cat "$WORK/strict.json"; fail "widen_unique = false refuses: exit $rc"; }
assert_eq "$(jq -r '.checks[] | select(.name == "unique keys") | .status' "$WORK/strict.json")" FAIL "unique keys check"

# A rewrite rule is refused; a materialized view reading the table is a WARN
# with the statements to re-create it.
sql <<'SQL'
CREATE TABLE audit.ruled (id int PRIMARY KEY, at timestamptz NOT NULL);
CREATE RULE "keep rows" AS ON DELETE TO audit.ruled DO INSTEAD NOTHING;
CREATE MATERIALIZED VIEW audit."Ruled Count" AS SELECT count(*) FROM audit.ruled;
SQL
write_job "$WORK/ruled.ini" audit.ruled at "1 month" "[job]" "name = ruled"
set +e
"$PGSHIFT_BIN" plan -c "$WORK/ruled.ini" --format json >"$WORK/ruled.json" 2>&1
rc=$?
set -e
[ "$rc" = 3 ] || { cat "$WORK/ruled.json"; fail "a rewrite rule is refused: exit $rc"; }
assert_eq "$(jq -r '.checks[] | select(.name == "rules") | .status' "$WORK/ruled.json")" FAIL "rules check"
assert_eq "$(jq -r '.checks[] | select(.name == "materialized view audit.\"Ruled Count\"") | .status' "$WORK/ruled.json")" WARN "materialized view check"
assert_eq "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 0 "replication slots left"
assert_eq "$(q "SELECT count(*) FROM pg_publication WHERE pubname LIKE 'pgshift%'")" 0 "job publications left"
