#!/usr/bin/env bash
# Every kind of change made during sync reaches the shadow exactly: INSERT,
# UPDATE of ordinary columns, UPDATE leaving a TOASTed value unchanged ('u'),
# UPDATE that moves a row to another partition, DELETE (replica identity PK
# without the partition key), stored generated columns, NULLs, arrays,
# numeric, bytea, jsonb, enums, timestamptz; a REPLICA IDENTITY FULL table
# without a key; TRUNCATE; TRUNCATE ... RESTART IDENTITY CASCADE of a table
# that another table references. The shadow is compared with the source row
# by row before a manual cutover.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL,
    tenant int,
    kind mood,
    amount numeric(12, 3),
    tags text[],
    blob bytea,
    payload jsonb,
    big text,
    amount_x2 numeric GENERATED ALWAYS AS (amount * 2) STORED
);
INSERT INTO events (created_at, tenant, kind, amount, tags, blob, payload, big)
  SELECT timestamptz '2025-01-01 00:00+00' + i * interval '7 hours', i % 10, 'ok', i * 1.5,
         ARRAY['a' || i, NULL], decode(md5(i::text), 'hex'), jsonb_build_object('i', i),
         CASE WHEN i % 100 = 0 THEN (SELECT string_agg(md5(j::text || i), '') FROM generate_series(1, 200) j) END
  FROM generate_series(1, 3000) i;
CREATE TABLE logs (at timestamp NOT NULL, msg text, n int);
ALTER TABLE logs REPLICA IDENTITY FULL;
INSERT INTO logs SELECT timestamp '2025-01-01' + i * interval '1 day', 'm' || (i % 7), i FROM generate_series(1, 200) i;
SQL
write_job "$WORK/events.ini" events created_at "1 month" "premake = 2" "[cutover]" "mode = manual" "reverse = false"
write_job "$WORK/logs.ini" logs at "1 month" "premake = 2" "default_partition = true" "[cutover]" "mode = manual" "reverse = false"

"$PGSHIFT_BIN" run -c "$WORK/events.ini" >"$WORK/events.out" 2>&1 &
pid=$!
wait_for phase_is events sync || { cat "$WORK/events.out"; fail "events never reached sync"; }
sql <<'SQL'
SET TimeZone = 'America/New_York';
INSERT INTO events (created_at, tenant, kind, amount, tags, blob, payload, big)
  VALUES ('2025-03-01 12:00-05', 1, 'happy', 10.125, '{x,y}', '\x00ff', '{"new": true}', NULL),
         ('2025-03-02 12:00-05', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
UPDATE events SET amount = amount + 1, payload = payload || '{"upd": 1}' WHERE id % 50 = 0;
UPDATE events SET tenant = 99 WHERE id % 100 = 0;                    -- big stays 'u'
UPDATE events SET created_at = created_at + interval '40 days' WHERE id % 300 = 0;  -- partition move
UPDATE events SET created_at = created_at + interval '40 days', big = big WHERE id = 600;
DELETE FROM events WHERE id % 70 = 0;
BEGIN; INSERT INTO events (created_at, tenant) VALUES ('2025-02-01', 5); ROLLBACK;
UPDATE events SET tags = tags || '{z}'::text[], kind = 'sad' WHERE id BETWEEN 10 AND 20;
SQL
WAIT_SECS=60 wait_for same_rows events events__pgshift || fail "events and its shadow differ"
assert_eq "$(q "SELECT count(*) FROM events__pgshift WHERE big IS NOT NULL")" "$(q "SELECT count(*) FROM events WHERE big IS NOT NULL")" "TOASTed values kept"
"$PGSHIFT_BIN" cutover -c "$WORK/events.ini"
wait "$pid" || { cat "$WORK/events.out"; fail "events run failed"; }
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'events'")" p "events partitioned"
same_rows events events__pgshift_old || fail "old and new events differ after cutover"
# Sequence continues: a new row gets a fresh id.
sql -c "INSERT INTO events (created_at) VALUES ('2025-01-15')"
assert_eq "$(q "SELECT count(*) FROM events WHERE id > (SELECT max(id) FROM events__pgshift_old)")" 1 "sequence continues"

"$PGSHIFT_BIN" run -c "$WORK/logs.ini" >"$WORK/logs.out" 2>&1 &
pid=$!
wait_for phase_is logs sync || { cat "$WORK/logs.out"; fail "logs never reached sync"; }
sql <<'SQL'
INSERT INTO logs VALUES ('2025-02-10', 'dup', 1), ('2025-02-10', 'dup', 1), ('2030-01-01', 'far future', 2);
UPDATE logs SET msg = 'changed' WHERE n = 5;
DELETE FROM logs WHERE msg = 'dup' AND ctid = (SELECT min(ctid) FROM logs WHERE msg = 'dup');
UPDATE logs SET n = NULL WHERE n = 7;
UPDATE logs SET msg = NULL WHERE n IS NULL;
SQL
WAIT_SECS=60 wait_for same_rows logs logs__pgshift || fail "logs and its shadow differ"
sql -c "TRUNCATE logs" -c "INSERT INTO logs VALUES ('2025-01-05', 'after truncate', 1)"
WAIT_SECS=60 wait_for same_rows logs logs__pgshift || fail "logs differ after TRUNCATE"
"$PGSHIFT_BIN" cutover -c "$WORK/logs.ini"
wait "$pid" || { cat "$WORK/logs.out"; fail "logs run failed"; }
assert_eq "$(q "SELECT count(*) FROM logs")" 1 "logs rows after truncate"
assert_eq "$(q "SELECT relreplident FROM pg_class WHERE relname = 'logs'")" f "replica identity carried"

# TRUNCATE ... CASCADE: the source also empties the referencing table (not
# published); the shadow, which nothing references while it is synced, is
# emptied and its identity restarts, as on the source. Like PostgreSQL's apply
# worker (worker.c apply_handle_truncate), the target does not cascade further.
sql <<'SQL'
CREATE TABLE orders (id bigserial, at date NOT NULL, total numeric, PRIMARY KEY (id, at));
CREATE TABLE order_lines (order_id bigint, order_at date, item text,
                          FOREIGN KEY (order_id, order_at) REFERENCES orders (id, at));
INSERT INTO orders (at, total) SELECT date '2025-01-01' + i, i FROM generate_series(1, 100) i;
INSERT INTO order_lines SELECT id, at, 'item' FROM orders;
SQL
write_job "$WORK/orders.ini" orders at "1 month" "premake = 2" "[cutover]" "mode = manual" "reverse = false"
"$PGSHIFT_BIN" run -c "$WORK/orders.ini" >"$WORK/orders.out" 2>&1 &
pid=$!
wait_for phase_is orders sync || { cat "$WORK/orders.out"; fail "orders never reached sync"; }
sql -c "INSERT INTO orders (at, total) VALUES ('2025-02-01', 1)" \
    -c "TRUNCATE orders RESTART IDENTITY CASCADE" \
    -c "INSERT INTO orders (at, total) VALUES ('2025-03-01', 2), ('2025-04-01', 3)"
assert_eq "$(q "SELECT count(*) FROM order_lines")" 0 "the source's TRUNCATE cascaded"
WAIT_SECS=60 wait_for same_rows orders orders__pgshift || fail "orders differ after TRUNCATE ... CASCADE"
assert_eq "$(q "SELECT string_agg(id::text, ',' ORDER BY id) FROM orders__pgshift")" 1,2 "identity restarted in the shadow"
"$PGSHIFT_BIN" cutover -c "$WORK/orders.ini"
wait "$pid" || { cat "$WORK/orders.out"; fail "orders run failed"; }
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'orders'")" p "orders partitioned"
sql -c "INSERT INTO order_lines VALUES (2, '2025-04-01', 'after cutover')"
assert_eq "$(q "SELECT confrelid::regclass FROM pg_constraint WHERE conrelid = 'order_lines'::regclass AND contype = 'f' AND conparentid = 0")" orders "foreign key follows the new table"
