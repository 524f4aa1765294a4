#!/usr/bin/env bash
# A long transaction holds a lock on the source while cutover is requested.
#  - Each lock attempt gives up after lock_timeout_ms: a concurrent writer's
#    statements, queued behind the attempt, never wait much longer than that.
#  - Attempts back off exponentially (with jitter).
#  (b) With the blocker held through max_attempts, the cutover gives up
#      cleanly: the error names the blocker (pid, age, query) and the fix, the
#      source is untouched, the prepared reverse stream is gone, and the job
#      keeps syncing.
#  (a) A second `pgshift cutover`, during which the blocker commits, succeeds.
# Nothing is lost: sum(v) equals the writer's committed transactions, and the
# old table matches the new one row for row through the reverse stream.
. "$(dirname "$0")/lib.sh"

LOCK_MS=300
ATTEMPTS=5
MARGIN_MS=250 # scheduling noise on a shared 2-core machine
sql -c "CREATE TABLE acct (id int PRIMARY KEY, v bigint NOT NULL DEFAULT 0)"
sql -c "INSERT INTO acct SELECT g, 0 FROM generate_series(1, 1000) g"
write_job "$WORK/job.ini" acct id 250 "premake = 1" "[cutover]" "mode = manual" "reverse = true" \
  "lock_timeout_ms = $LOCK_MS" "max_attempts = $ATTEMPTS" "long_transaction_s = 1"

# The writer: back-to-back 2 s pgbench runs of one UPDATE, per-transaction log.
cat >"$WORK/writer.sql" <<'SQL'
\set id random(1, 1000)
UPDATE acct SET v = v + 1 WHERE id = :id;
SQL
mkdir -p "$WORK/w"
(
  i=0
  while [ ! -f "$WORK/w/stop" ]; do
    i=$((i + 1))
    "$PGBIN/pgbench" -n -c 2 -j 2 -T 2 -f "$WORK/writer.sql" -l --log-prefix="$WORK/w/log$i" \
      "$DB" >"$WORK/w/run.$i.out" 2>&1 || echo "exit=$?" >>"$WORK/w/run.$i.out"
  done
) &
WRITER_PID=$!
# max_latency_ms FROM TO: the longest writer transaction that ended in [FROM, TO] (epoch s).
max_latency_ms() {
  cat "$WORK"/w/log* | awk -v a="$1" -v b="$2" '$5 >= a && $5 <= b && $3 + 0 > m {m = $3 + 0} END {printf "%d", m / 1000}'
}

"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run.out" 2>&1 &
JOB_PID=$!
wait_for phase_is acct sync || { tail -20 "$WORK/run.out"; fail "no sync"; }
sleep 1

# The blocker: a session idle in a transaction that read the table (ACCESS SHARE).
mkfifo "$WORK/blk"
psql -X -q -v ON_ERROR_STOP=1 <"$WORK/blk" >"$WORK/blk.out" 2>&1 &
exec 3>"$WORK/blk"
echo "BEGIN; SELECT count(*) FROM acct WHERE v >= 0;" >&3
blocker_pid() { q "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND state = 'idle in transaction' AND query LIKE 'SELECT count(*) FROM acct%'"; }
has_blocker() { [ -n "$(blocker_pid)" ]; }
wait_for has_blocker || fail "blocker not idle in transaction"
BLK=$(blocker_pid)
sleep 1.5 # older than long_transaction_s

# (b) The blocker stays through every attempt.
T1=$(date +%s)
"$PGSHIFT_BIN" cutover -c "$WORK/job.ini" >/dev/null
WAIT_SECS=30 wait_for grep -q "could not cut over" "$WORK/run.out" || { tail -20 "$WORK/run.out"; fail "cutover did not give up"; }
T2=$(date +%s)
err=$(grep "could not cut over" "$WORK/run.out")
echo "$err"
for part in "$ATTEMPTS attempts" "pid $BLK" "idle in transaction" "SELECT count(*) FROM acct WHERE v >= 0" \
  "pg_terminate_backend" "the source is unchanged" "pgshift cutover -c"; do
  [[ "$err" == *"$part"* ]] || fail "the give-up error does not say '$part'"
done
grep -q "pid $BLK .*holds or waits for a lock on public.acct" "$WORK/run.out" || fail "long transaction not reported before locking"
assert_eq "$(grep -c "lock_timeout ($LOCK_MS ms) expired" "$WORK/run.out")" $((ATTEMPTS - 1)) "lock timeouts logged (the last one ends in the error)"
# Backoff: attempt k waits 100 * 2^(k-1) ms plus up to half of that in jitter.
k=0
for d in $(grep -oE 'retrying in [0-9]+ ms' "$WORK/run.out" | awk '{print $3}'); do
  base=$((100 << k))
  { [ "$d" -ge "$base" ] && [ "$d" -le $((base + base / 2)) ]; } || fail "retry $((k + 1)) waited $d ms, expected $base..$((base + base / 2))"
  k=$((k + 1))
done
# Each attempt gave the lock back after lock_timeout (wait measured by pgshift).
for w in $(grep -oE 'expired waiting for other transactions on public.acct after [0-9]+ ms' "$WORK/run.out" | awk '{print $(NF - 1)}'); do
  [ "$w" -ge $((LOCK_MS - 5)) ] && [ "$w" -le $((LOCK_MS + MARGIN_MS)) ] || fail "a lock attempt waited $w ms (lock_timeout_ms $LOCK_MS)"
done
kill -0 "$JOB_PID" || { tail -20 "$WORK/run.out"; fail "the job exited after the cutover gave up"; }
assert_eq "$(job_phase acct)" sync "phase after giving up"
assert_eq "$(q "SELECT cutover_requested FROM pgshift.jobs")" f "request cleared"
[[ "$(q "SELECT last_error FROM pgshift.jobs")" == *"pid $BLK"* ]] || fail "last_error does not name the blocker"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'acct'")" r "source untouched"
assert_eq "$(q "SELECT count(*) FROM pg_publication")" 1 "only the forward publication left"
assert_eq "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 1 "only the forward slot left"
sleep 1 # the writer's logs are written as transactions end
worst=$(max_latency_ms "$T1" "$T2")
echo "(b) gave up after $ATTEMPTS attempts in $((T2 - T1)) s; worst writer statement meanwhile ${worst} ms (lock_timeout_ms $LOCK_MS)"
[ "$worst" -le $((LOCK_MS + MARGIN_MS)) ] || fail "a writer waited ${worst} ms, more than lock_timeout_ms + ${MARGIN_MS}"
[ "$worst" -ge $((LOCK_MS * 8 / 10)) ] || fail "the writer never queued behind a lock attempt (worst ${worst} ms): the test proves nothing"

# (a) A later cutover succeeds once the blocker commits.
timeouts() { grep -c "lock_timeout ($LOCK_MS ms) expired" "$WORK/run.out"; }
before=$(timeouts)
T3=$(date +%s)
"$PGSHIFT_BIN" cutover -c "$WORK/job.ini" >/dev/null
retried() { [ "$(timeouts)" -gt "$before" ]; }
wait_for retried || fail "the second cutover made no lock attempt"
echo "COMMIT;" >&3
exec 3>&-
wait_for phase_is acct reverse || { tail -20 "$WORK/run.out"; fail "no cutover after the blocker committed"; }
T4=$(date +%s)
ok=$(grep -oE 'source was locked for [0-9.]+ ms \(attempt [0-9]+' "$WORK/run.out" | tail -1)
echo "(a) $ok"
[ "${ok##* }" -ge 2 ] || fail "the cutover should have needed a retry while the blocker held its lock"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'acct'")" p "partitioned after cutover"
assert_eq "$(q "SELECT last_error FROM pgshift.jobs")" "" "last_error cleared by the swap"
sleep 1
echo "(a) worst writer statement during the second cutover: $(max_latency_ms "$T3" "$T4") ms"

touch "$WORK/w/stop"
wait "$WRITER_PID"
grep -l -E 'aborted|exit=|ERROR' "$WORK"/w/run.*.out && fail "the writer saw errors"
committed=$(cat "$WORK"/w/run.*.out | awk '/number of transactions actually processed/ {s += $NF} END {print s + 0}')
failed=$(cat "$WORK"/w/run.*.out | awk '/number of failed transactions/ {s += $5} END {print s + 0}')
assert_eq "$failed" 0 "writer failed transactions"
WAIT_SECS=60 wait_for same_rows acct acct__pgshift_old || fail "old table differs from the new one"
assert_eq "$(q "SELECT sum(v) FROM acct")" "$committed" "sum(v) = committed writer transactions"
echo "writer: $committed transactions, 0 failed; new and old tables match"
"$PGSHIFT_BIN" finalize -c "$WORK/job.ini" >/dev/null
wait "$JOB_PID" || { tail -20 "$WORK/run.out"; fail "run did not end cleanly"; }
assert_eq "$(q "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 0 "slots after finalize"
