#!/usr/bin/env bash
# Large transactions are never held whole in memory: while the job syncs, the
# source commits one 5,000,000-row transaction (LARGE_TXN_ROWS), 100,000 small
# transactions from 4 clients, and a 1,000,000-row transaction that rolls
# back. The shadow must end identical to the source and pgshift's peak RSS
# must stay under 200 MB (it is reported).
. "$(dirname "$0")/lib.sh"
ROWS=${LARGE_TXN_ROWS:-5000000}

sql <<'SQL'
CREATE TABLE big (id bigserial PRIMARY KEY, at timestamptz NOT NULL, payload text);
INSERT INTO big (at, payload) SELECT timestamptz '2025-01-01' + i * interval '1 minute', md5(i::text) FROM generate_series(1, 10000) i;
SQL
write_job "$WORK/job.ini" big at "1 month" "premake = 2" "[cutover]" "mode = manual" "reverse = false" "[safety]" "max_retained_wal = 20GB"
"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run.out" 2>&1 &
pid=$!
wait_for phase_is big sync || { cat "$WORK/run.out"; fail "never reached sync"; }

cat >"$WORK/small.sql" <<'SQL'
INSERT INTO big (at, payload) VALUES (timestamptz '2025-03-01' + random() * interval '20 days', 'small');
SQL
"$PGBIN/pgbench" -n -c 4 -j 2 -t 25000 -f "$WORK/small.sql" "$DB" >"$WORK/small.out" 2>&1 &
small_pid=$!
sql -c "BEGIN" \
    -c "INSERT INTO big (at, payload) SELECT timestamptz '2025-02-01' + (i % 40000) * interval '1 minute', repeat(md5(i::text), 4) FROM generate_series(1, 1000000) i" \
    -c "ROLLBACK"
sql -c "INSERT INTO big (at, payload) SELECT timestamptz '2025-01-01' + (i % 500000) * interval '1 minute', repeat(md5(i::text), 4) FROM generate_series(1, $ROWS) i"
wait "$small_pid" || { cat "$WORK/small.out"; fail "small transactions failed"; }
expected=$(q "SELECT count(*) FROM big")
echo "source has $expected rows"
caught_up() {
  kill -0 "$pid" 2>/dev/null || { tail -20 "$WORK/run.out"; fail "the job ended before catching up"; }
  [ "$(q "SELECT count(*) FROM big__pgshift")" = "$expected" ]
}
WAIT_SECS=900 wait_for caught_up || { tail -20 "$WORK/run.out"; fail "shadow never reached $expected rows"; }
same_rows big big__pgshift || fail "shadow differs from source"
"$PGSHIFT_BIN" cutover -c "$WORK/job.ini"
wait "$pid" || { tail -20 "$WORK/run.out"; fail "run failed"; }
grep -E "peak memory" "$WORK/run.out"
peak=$(sed -n 's/.*peak memory (RSS) \([0-9]*\) MB.*/\1/p' "$WORK/run.out")
[ -n "$peak" ] || fail "peak memory not reported"
[ "$peak" -lt 200 ] || fail "peak RSS $peak MB is not under 200 MB"
grep -q "spool" "$WORK/run.out" || true
