#!/usr/bin/env bash
# Applier: identity GENERATED ALWAYS columns (inserted and updated during
# sync, ALWAYS again after cutover, sequence continued), REPLICA IDENTITY
# USING INDEX, domains, TRUNCATE ... RESTART IDENTITY; and a statement that
# fails on the shadow (a constraint the source lacks) stops the job naming the
# row and the source LSN, applies nothing of that transaction, and leaves the
# source as it was.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE DOMAIN positive_amount AS numeric(10, 2) CHECK (VALUE > 0);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY,
    placed_at timestamptz NOT NULL,
    ref text NOT NULL,
    amount positive_amount,
    note text
);
CREATE UNIQUE INDEX orders_ref_key ON orders (ref, placed_at);
ALTER TABLE orders REPLICA IDENTITY USING INDEX orders_ref_key;
INSERT INTO orders (placed_at, ref, amount)
  SELECT timestamptz '2025-01-01' + i * interval '3 hours', 'R' || i, i FROM generate_series(1, 2000) i;
SQL
write_job "$WORK/orders.ini" orders placed_at "1 month" "premake = 2" "[cutover]" "mode = manual" "reverse = false"
"$PGSHIFT_BIN" run -c "$WORK/orders.ini" >"$WORK/orders.out" 2>&1 &
pid=$!
wait_for phase_is orders sync || { cat "$WORK/orders.out"; fail "orders never reached sync"; }
sql <<'SQL'
INSERT INTO orders (placed_at, ref, amount) VALUES ('2025-02-03', 'NEW1', 5), ('2025-02-04', 'NEW2', 6);
UPDATE orders SET amount = amount + 1, note = 'upd' WHERE id % 10 = 0;
UPDATE orders SET ref = ref || '-renamed' WHERE id % 33 = 0;          -- identity key changes: 'K' old key
UPDATE orders SET id = DEFAULT WHERE id = 7;                          -- identity value changes
DELETE FROM orders WHERE id % 17 = 0;
SQL
WAIT_SECS=60 wait_for same_rows orders orders__pgshift || fail "orders and its shadow differ"
sql -c "TRUNCATE orders RESTART IDENTITY" -c "INSERT INTO orders (placed_at, ref, amount) VALUES ('2025-01-10', 'AFTER', 1)"
WAIT_SECS=60 wait_for same_rows orders orders__pgshift || fail "orders differ after TRUNCATE RESTART IDENTITY"
"$PGSHIFT_BIN" cutover -c "$WORK/orders.ini"
wait "$pid" || { cat "$WORK/orders.out"; fail "orders run failed"; }
assert_eq "$(q "SELECT attidentity FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'id'")" a "identity ALWAYS restored"
sql -c "INSERT INTO orders (placed_at, ref, amount) VALUES ('2025-01-11', 'NEXT', 2)"
assert_eq "$(q "SELECT id FROM orders WHERE ref = 'NEXT'")" 2 "identity continues from the source's sequence (restarted by TRUNCATE)"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'orders'")" p "orders partitioned"

# A constraint on the shadow that the source lacks: the job must stop.
sql <<'SQL'
CREATE TABLE readings (id bigserial PRIMARY KEY, at timestamptz NOT NULL, value int);
INSERT INTO readings (at, value) SELECT timestamptz '2025-01-01' + i * interval '1 hour', i % 100 FROM generate_series(1, 1000) i;
SQL
write_job "$WORK/readings.ini" readings at "1 month" "premake = 2" "[cutover]" "mode = manual" "reverse = false"
before=$(q "SELECT md5(string_agg(r::text, ',' ORDER BY id)) FROM readings r")
"$PGSHIFT_BIN" run -c "$WORK/readings.ini" >"$WORK/readings.out" 2>&1 &
pid=$!
wait_for phase_is readings sync || { cat "$WORK/readings.out"; fail "readings never reached sync"; }
sql -c "ALTER TABLE readings__pgshift ADD CONSTRAINT value_small CHECK (value < 1000)"
lsn=$(q "SELECT pg_current_wal_lsn()")
sql -c "UPDATE readings SET value = 5000 WHERE id = 42"
set +e
wait "$pid"; rc=$?
set -e
cat "$WORK/readings.out" | grep -E "error|failed" | head -3
assert_eq "$rc" 1 "exit code of the failed job"
grep -q 'value_small' "$WORK/readings.out" || fail "constraint not named"
grep -q 'id=42' "$WORK/readings.out" || fail "row key not named"
grep -q 'commit LSN' "$WORK/readings.out" || fail "source LSN not named"
assert_eq "$(q "SELECT count(*) FROM pg_class WHERE relname = 'readings__pgshift'")" 0 "shadow dropped"
assert_eq "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 0 "slot dropped"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'readings'")" r "source untouched"
assert_eq "$(q "SELECT value FROM readings WHERE id = 42")" 5000 "application's write kept"
echo "source changed only by the application's own update since $lsn"
[ "$before" != "$(q "SELECT md5(string_agg(r::text, ',' ORDER BY id)) FROM readings r")" ]
