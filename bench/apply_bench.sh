#!/usr/bin/env bash
# Applier benchmark: the same change stream applied by PostgreSQL's own logical
# replication apply worker and by pgshift, in one run, on one throwaway cluster.
#
#   bench/apply_bench.sh                 # full size: 5,000,000-row events table
#   N=500000 bench/apply_bench.sh        # quick run, workload scaled by N/5M
#
# Needs build/pgshift built Release (builds nothing itself) and PostgreSQL 15
# server binaries (scripts/pgcluster.sh). Environment:
#   N=5000000       rows in src.events; the workload is 1M INSERT + 300k UPDATE
#                   + 100k DELETE single-row transactions scaled by N/5M
#   RUNS=1          catch-up runs (each: workload with apply stopped, then native
#                   and pgshift catch-up, order alternating per run) and
#                   steady-state rounds (none/native/pgshift, order alternating)
#   SCALE=50*N/5M   pgbench scale for the steady-state part (min 5)
#   T=60            seconds of pgbench -c 4 -j 2 TPC-B per steady-state mode
#   C=2             pgbench clients issuing the catch-up workload
#   STEADY=1        0 skips the steady-state part
#   VERIFY=1        0 skips comparing source and both targets after each catch-up
#   PROFILE=0       1: perf record -a during each catch-up; per-process top
#                   symbols in OUT/perf_<consumer>_<run>.txt (perf adds a little
#                   load to both alike)
#   WAITS=0         1: sample pg_stat_activity every 10 ms during each catch-up;
#                   each consumer process's share of samples per wait event
#                   (or "running") in OUT/waits_<consumer>_<run>.txt
#   QUIET_MAX=300   seconds to wait before each measurement for other
#                   processes on the machine to go quiet
#   LINK=tcp        how both consumers reach the source: tcp (127.0.0.1, as a
#                   client on another host would) or unix (the cluster's Unix
#                   socket, as a client on the database host can)
#   PGSHIFT=build/pgshift   binary to test (copied first, so a rebuild during
#                   the run does not change it)
#   OUT=/tmp/pgshift-apply-bench.XXXX   logs, samples, results.md (kept)
#   DOC=docs/benchmarks.md  the results block of the section "Applier: catch-up
#                   vs native logical replication" is (re)written there; DOC=
#                   (empty) leaves the docs alone
#
# Both consumers read the same WAL from the same cluster: native logical
# replication (publication -> subscription into database dst, partitioned
# events with 12 monthly partitions, PK (id, created_at)) and pgshift (job on
# src.events, shadow events__pgshift with the same layout). The cluster comes
# from scripts/pgcluster.sh (fsync = off, full_page_writes = off) with the
# settings below appended; it is stopped and removed on exit.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMDLINE="$(for v in N RUNS LINK SCALE T C STEADY VERIFY PROFILE QUIET_MAX; do if [ -n "${!v:-}" ]; then printf "%s=%s " "$v" "${!v}"; fi; done)$(n=$(ps -o ni= $$ | tr -d ' '); [ "$n" = 0 ] || echo "nice -n $n ")bench/apply_bench.sh"
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
N=${N:-5000000}
RUNS=${RUNS:-1}
T=${T:-60}
C=${C:-2}
STEADY=${STEADY:-1}
VERIFY=${VERIFY:-1}
PGSHIFT_SRC_BIN=${PGSHIFT:-$ROOT/build/pgshift}
DOC=${DOC-$ROOT/docs/benchmarks.md}
OUT=${OUT:-$(mktemp -d /tmp/pgshift-apply-bench.XXXXXX)}
mkdir -p "$OUT"
chmod 755 "$OUT"
STATE=$OUT/cluster

# workload, scaled by N / 5,000,000 (each count a multiple of C)
scaled() { echo $(( ($1 * N / 5000000 + C - 1) / C * C )); }
N_INS=$(scaled 1000000)
N_UPD=$(scaled 300000)
N_DEL=$(scaled 100000)
CHANGES=$((N_INS + N_UPD + N_DEL))
SCALE=${SCALE:-$(( 50 * N / 5000000 < 5 ? 5 : 50 * N / 5000000 ))}
M4=$((N / 4))   # deletes hit ids = 0 mod 4, updates ids = 1..3 mod 4: every change hits a live row
[ $((RUNS * N_DEL)) -le "$M4" ] || { echo "RUNS * deletes exceeds N/4" >&2; exit 2; }

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/bench.log" >&2; }
die() { log "FAILED: $*"; exit 1; }

[ -x "$PGSHIFT_SRC_BIN" ] || die "no pgshift binary at $PGSHIFT_SRC_BIN (build it Release first: scripts/build.sh)"
cp "$PGSHIFT_SRC_BIN" "$OUT/pgshift"
PGSHIFT_BIN=$OUT/pgshift
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$(dirname "$PGSHIFT_SRC_BIN")/CMakeCache.txt" 2>/dev/null || echo unknown)
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l)

# ---------------------------------------------------------------- cleanup
BG_PIDS=()
JOB_PID=""
cleanup() {
  local rc=$?
  set +e   # a failing kill or wait must not skip stopping the cluster
  if [ -n "$JOB_PID" ]; then kill -TERM "$JOB_PID" 2>/dev/null; wait "$JOB_PID" 2>/dev/null; fi
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$ROOT/scripts/pgcluster.sh" stop "$STATE" >/dev/null 2>&1 || true
  [ $rc -eq 0 ] || echo "apply_bench: failed (exit $rc); logs in $OUT" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- cluster
log "output in $OUT; N=$N ($N_INS ins / $N_UPD upd / $N_DEL del per run), RUNS=$RUNS, SCALE=$SCALE, T=$T"
"$ROOT/scripts/pgcluster.sh" start "$STATE" | tee -a "$OUT/bench.log" >&2
# shellcheck disable=SC1091
. "$STATE/env"
case ${LINK:=tcp} in
  tcp) CONSUMER_HOST=$PGHOST ;;
  unix) CONSUMER_HOST=$PGSHIFT_CLUSTER_DIR ;;
  *) die "LINK must be tcp or unix, not $LINK" ;;
esac
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cat >>"$PGSHIFT_CLUSTER_DIR/data/postgresql.conf" <<CONF
# --- bench/apply_bench.sh ---
shared_buffers = 6GB
max_wal_size = 30GB
checkpoint_timeout = 30min
log_min_messages = warning
log_checkpoints = on
log_line_prefix = '%m [%p] %a '
CONF
as_owner "$PGBIN/pg_ctl" -D "$PGSHIFT_CLUSTER_DIR/data" -l "$PGSHIFT_CLUSTER_DIR/server.log" -w -t 120 restart >/dev/null
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1)
q() { local db=$1; shift; "${PSQL[@]}" -At -d "$db" -c "$*"; }
PGBENCH="$PGBIN/pgbench"
now() { date +%s.%N; }
fmt() { printf "%.${2:-1}f" "$1"; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# CPU seconds of one process (all threads) and of the whole cluster
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cluster_cpu() {
  local pm; pm=$(head -1 "$PGSHIFT_CLUSTER_DIR/data/postmaster.pid")
  { awk '{print $14+$15+$16+$17}' "/proc/$pm/stat"
    for c in $(ps -o pid= --ppid "$pm"); do awk '{print $14+$15}' "/proc/$c/stat" 2>/dev/null || true; done; } |
    awk -v hz="$(getconf CLK_TCK)" '{s += $1} END {printf "%.2f", s / hz}'
}
# busy CPU seconds of the whole machine (all processes, also other users')
machine_busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2+$3+$4+$7+$8+$9) / hz }' /proc/stat; }

# wait_caught_up ORIGIN MARKER SLOT TARGET TIMEOUT: epoch seconds at which the
# origin's remote_lsn passed MARKER (an LSN inside the last workload
# transaction, so the origin, which records commit end LSNs, is past it exactly
# when that transaction is applied) and at which the slot's confirmed_flush_lsn
# reached TARGET. Polls every 20 ms inside one backend.
"${PSQL[@]}" -d postgres <<'SQL'
CREATE FUNCTION bench_wait(p_origin text, p_marker pg_lsn, p_slot text, p_target pg_lsn, p_timeout float8)
RETURNS TABLE (t_origin float8, t_slot float8) LANGUAGE plpgsql AS $$
DECLARE deadline timestamptz := clock_timestamp() + make_interval(secs => p_timeout);
BEGIN
  LOOP
    IF t_origin IS NULL AND (p_origin IS NULL OR coalesce((SELECT remote_lsn FROM pg_replication_origin_status
                                   WHERE external_id = p_origin), '0/0') > p_marker) THEN
      t_origin := extract(epoch FROM clock_timestamp());
    END IF;
    IF t_slot IS NULL AND (p_slot IS NULL OR coalesce((SELECT confirmed_flush_lsn FROM pg_replication_slots
                                   WHERE slot_name = p_slot), '0/0') >= p_target) THEN
      t_slot := extract(epoch FROM clock_timestamp());
    END IF;
    EXIT WHEN t_origin IS NOT NULL AND t_slot IS NOT NULL;
    -- the slot's confirmed position may lag the apply; give up on it 60 s after the origin
    EXIT WHEN t_origin IS NOT NULL AND clock_timestamp() > to_timestamp(t_origin) + interval '60 s';
    IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'bench_wait: timeout after % s', p_timeout; END IF;
    PERFORM pg_sleep(0.02);
  END LOOP;
  RETURN NEXT;
END $$;
SQL

PG_VERSION_STR=$(q postgres "SELECT version()")
PG_SETTINGS=$(q postgres "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings WHERE name IN
  ('shared_buffers','max_wal_size','checkpoint_timeout','fsync','full_page_writes','synchronous_commit','wal_level',
   'logical_decoding_work_mem','max_logical_replication_workers','wal_writer_delay','work_mem')")
log "PostgreSQL: $PG_VERSION_STR"
log "settings: $PG_SETTINGS"

# ---------------------------------------------------------------- 1. source
START_MONTH=$(q postgres "SELECT date_trunc('month', now()) - interval '11 months'")
START_EPOCH=$(q postgres "SELECT extract(epoch FROM '$START_MONTH'::timestamptz)::bigint")
SPAN=$(q postgres "SELECT (extract(epoch FROM '$START_MONTH'::timestamptz + interval '12 months') - $START_EPOCH - 3600)::bigint")
q postgres "CREATE DATABASE src"
q postgres "CREATE DATABASE dst"
log "loading $N rows into src.events"
t0=$(now)
"${PSQL[@]}" -d src -v n="$N" -v start="$START_MONTH" <<'SQL'
CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, tenant_id int NOT NULL,
                     type text NOT NULL, payload jsonb NOT NULL);
INSERT INTO events (created_at, tenant_id, type, payload)
SELECT :'start'::timestamptz + ((g - 1)::float8 / :n) * (interval '12 months' - interval '1 hour') + random() * interval '10 min',
       1 + (random() * 999)::int,
       (ARRAY['page_view','click','signup','login','logout','purchase','error','api_call'])[1 + (g % 8)],
       jsonb_build_object('user_id', (random() * 1e6)::int, 'session', md5(g::text),
                          'url', '/app/' || (g % 1000) || '/item/' || (random() * 1e5)::int,
                          'ua', 'Mozilla/5.0 (X11; Linux x86_64) bench/' || (g % 50),
                          'amount', round((random() * 1000)::numeric, 2), 'ok', (g % 7 <> 0))
  FROM generate_series(1, :n) g;
VACUUM (ANALYZE) events;
SQL
PAYLOAD_B=$(q src "SELECT round(avg(pg_column_size(payload))) FROM events")
HEAP_MB=$(q src "SELECT pg_relation_size('events') >> 20")
log "loaded in $(fmt "$(calc "$(now) - $t0")") s; heap $HEAP_MB MB, payload avg $PAYLOAD_B B"

# ---------------------------------------------------------------- 2. consumers
# pgshift: a job on src.events, run until sync (copy and index done), then stopped.
job_ini() { # FILE TABLE COLUMN INTERVAL
  cat >"$1" <<INI
[source]
dsn = host=$CONSUMER_HOST port=$PGPORT dbname=src user=$PGUSER
table = $2
[partitioning]
column = $3
interval = $4
premake = 0
[copy]
workers = 2
[cutover]
mode = manual
[safety]
max_retained_wal = 60GB
INI
}
phase_of() { q src "SELECT phase FROM pgshift.jobs WHERE job_name = '$1'" 2>/dev/null || true; }
start_pgshift() { # INI LOG
  JOB_LOG_OFF=$(stat -c %s "$2" 2>/dev/null || echo 0)
  "$PGSHIFT_BIN" run -c "$1" >>"$2" 2>&1 &
  JOB_PID=$!
}
stop_pgshift() { # LOG
  [ -n "$JOB_PID" ] || return 0
  kill -TERM "$JOB_PID" 2>/dev/null || true
  local rc=0; wait "$JOB_PID" || rc=$?
  JOB_PID=""
  tail -c +$((JOB_LOG_OFF + 1)) "$1" | grep -q "stopped (stopped by signal)" || { tail -20 "$1" >&2; die "pgshift did not stop cleanly on SIGTERM (exit $rc)"; }
}
pgshift_alive() { [ -n "$JOB_PID" ] && kill -0 "$JOB_PID" 2>/dev/null; }
# wait_sync JOB LOG: phase sync and slot caught up with the current WAL
wait_sync() {
  local job=$1 joblog=$2 deadline=$(( $(date +%s) + 3600 )) lsn
  until [ "$(phase_of "$job")" = sync ]; do
    pgshift_alive || { tail -30 "$joblog" >&2; die "pgshift exited before reaching sync"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "pgshift: no sync after an hour"
    sleep 1
  done
  lsn=$(q postgres "SELECT pg_current_wal_lsn()")
  until [ "$(q postgres "SELECT coalesce(bool_and(confirmed_flush_lsn >= '$lsn'), false) FROM pg_replication_slots WHERE slot_name ~ '^pgshift_${job}_[0-9a-f]{8}\$'")" = t ]; do
    pgshift_alive || { tail -30 "$joblog" >&2; die "pgshift exited while catching up"; }
    sleep 0.5
  done
}

job_ini "$OUT/events.ini" events created_at "1 month"
log "pgshift: initial copy of src.events (not timed)"
t0=$(now)
start_pgshift "$OUT/events.ini" "$OUT/pgshift_events.log"
wait_sync events "$OUT/pgshift_events.log"
log "pgshift: in sync after $(fmt "$(calc "$(now) - $t0")") s ($(grep -E '^.*copy: [0-9]+ rows in' "$OUT/pgshift_events.log" | sed 's/.*copy: /copy: /' | tail -1))"
stop_pgshift "$OUT/pgshift_events.log"
# the forward stream's slot and origin are both named pgshift_<job>_<xxh32 of the database> (src/job_names.cpp)
PGSHIFT_ORIGIN=$(q postgres "SELECT roname FROM pg_replication_origin WHERE roname ~ '^pgshift_events_[0-9a-f]{8}\$'")
PGSHIFT_SLOT=$(q postgres "SELECT slot_name FROM pg_replication_slots WHERE slot_name ~ '^pgshift_events_[0-9a-f]{8}\$'")
[ -n "$PGSHIFT_ORIGIN" ] && [ -n "$PGSHIFT_SLOT" ] && [ "$PGSHIFT_ORIGIN" = "$PGSHIFT_SLOT" ] ||
  die "no (single) pgshift origin/slot for the events job: origin '$PGSHIFT_ORIGIN', slot '$PGSHIFT_SLOT'"
SHADOW_PARTS=$(q src "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events__pgshift'::regclass")
log "pgshift shadow: $SHADOW_PARTS partitions; $(q src "SELECT string_agg(indexdef, '; ') FROM pg_indexes WHERE tablename = 'events__pgshift'")"

# Native logical replication into an identically named partitioned table needs
# the partition key in the replica identity: with the default identity (id)
# the apply worker cannot find the row in a table whose key is (id, created_at)
# ("publisher did not send replica identity column expected by the logical
# replication target relation"). Created after pgshift's index phase so that
# the shadow gets exactly the target's indexes (PK (id, created_at) only).
q src "CREATE UNIQUE INDEX events_id_created_at_key ON events (id, created_at)"
q src "ALTER TABLE events REPLICA IDENTITY USING INDEX events_id_created_at_key"

log "native: partitioned dst.events, copied with a COPY pipe (not timed)"
"${PSQL[@]}" -d dst -v start="$START_MONTH" <<'SQL'
CREATE TABLE events (id bigint NOT NULL, created_at timestamptz NOT NULL, tenant_id int NOT NULL, type text NOT NULL,
                     payload jsonb NOT NULL, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
SELECT format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', 'events_' || to_char(s, 'YYYYMM'), s, s + interval '1 month')
  FROM generate_series(:'start'::timestamptz, :'start'::timestamptz + interval '11 months', interval '1 month') s \gexec
SQL
"$PGBIN/psql" -X -d src -c "COPY events TO STDOUT (FORMAT binary)" |
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d dst -c "COPY events FROM STDIN (FORMAT binary)"
q src "CREATE PUBLICATION bench_pub FOR TABLE events"
q src "SELECT pg_create_logical_replication_slot('bench_sub', 'pgoutput')" >/dev/null
q dst "CREATE SUBSCRIPTION bench_sub CONNECTION 'host=$CONSUMER_HOST port=$PGPORT dbname=src user=$PGUSER' PUBLICATION bench_pub
       WITH (create_slot = false, slot_name = 'bench_sub', copy_data = false, enabled = false)"
NATIVE_ORIGIN=$(q dst "SELECT 'pg_' || oid FROM pg_subscription WHERE subname = 'bench_sub'")
# Same starting state for both targets: vacuumed and analyzed after the bulk load.
q dst "VACUUM (ANALYZE) events"
q src "VACUUM (ANALYZE) events__pgshift"
[ "$(q dst "SELECT count(*) FROM events")" = "$N" ] || die "dst.events does not hold $N rows"
[ "$(q src "SELECT count(*) FROM events__pgshift")" = "$N" ] || die "events__pgshift does not hold $N rows"

# ---------------------------------------------------------------- 3. workload scripts
W=$OUT/workload; mkdir -p "$W"
cat >"$W/ins.sql" <<'SQL'
\set off random(0, :span)
\set tenant random(1, 1000)
\set u random(1, 1000000)
INSERT INTO events (created_at, tenant_id, type, payload) VALUES (to_timestamp(:start_epoch + :off), :tenant, 'api_call',
  jsonb_build_object('user_id', :u, 'session', md5(random()::text), 'url', '/app/' || (:u % 1000) || '/item/' || :off % 100000,
                     'ua', 'Mozilla/5.0 (X11; Linux x86_64) bench/' || (:u % 50), 'amount', round((random() * 1000)::numeric, 2), 'ok', true));
SQL
cat >"$W/upd.sql" <<'SQL'
\set q random(0, :m4 - 1)
\set r random(1, 3)
UPDATE events SET payload = jsonb_set(payload, '{amount}', to_jsonb(:q % 1000)) WHERE id = 4 * :q + :r;
SQL
# k -> 1 + (k * P mod N/4) is a bijection on 1..N/4 when gcd(P, N/4) = 1: distinct random-looking ids
for P in 2654435761 2246822519 3266489917 668265263 374761393; do
  a=$P; b=$M4; while [ "$b" -ne 0 ]; do t=$((a % b)); a=$b; b=$t; done
  [ "$a" -eq 1 ] && break
done
DEL_EXPR="(SELECT 4 * (1 + (nextval('bench_del_seq') * $P) % $M4))"
echo "DELETE FROM events WHERE id = $DEL_EXPR;" >"$W/del.sql"
q src "CREATE SEQUENCE bench_del_seq"

# align_consumers: both consumers caught up with the current WAL, so that both
# slots start the timed catch-up from about the same restart_lsn (pgshift's
# slot would otherwise also re-read the WAL of the dst copy and the vacuums)
# wait_restart SLOT LSN: while the consumer runs, CHECKPOINT (which logs
# running_xacts) until the slot's restart_lsn has moved past LSN
wait_restart() {
  for _ in $(seq 1 60); do
    [ "$(q postgres "SELECT restart_lsn >= '$2' FROM pg_replication_slots WHERE slot_name = '$1'")" = t ] && return 0
    q postgres "CHECKPOINT"
    sleep 1.5
  done
  log "warning: restart_lsn of $1 did not pass $2: $(q postgres "SELECT restart_lsn || ' confirmed ' || confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'")"
}
align_consumers() {
  local lsn
  lsn=$(q postgres "SELECT pg_current_wal_lsn()")
  server_log_mark
  q dst "ALTER SUBSCRIPTION bench_sub ENABLE"
  wait_bg native_healthy "SELECT bench_wait(NULL, NULL, 'bench_sub', '$lsn', 1800)" >/dev/null || native_failed
  wait_restart bench_sub "$lsn"
  q dst "ALTER SUBSCRIPTION bench_sub DISABLE"
  until [ "$(q postgres "SELECT active FROM pg_replication_slots WHERE slot_name = 'bench_sub'")" = f ]; do sleep 0.2; done
  echo "=== align" >>"$OUT/pgshift_events.log"
  start_pgshift "$OUT/events.ini" "$OUT/pgshift_events.log"
  wait_sync events "$OUT/pgshift_events.log"
  wait_restart "$PGSHIFT_SLOT" "$lsn"
  stop_pgshift "$OUT/pgshift_events.log"
  log "slots before the workload: $(q postgres "SELECT string_agg(slot_name || ' restart ' || restart_lsn || ' confirmed ' || confirmed_flush_lsn, '; ') FROM pg_replication_slots")"
}

declare -A PHASE_END
# origin progress every 0.25 s during a catch-up, to split its time by workload phase
start_origin_sampler() { # ORIGIN FILE
  cat >"$2.sql" <<SQL
SELECT extract(epoch FROM clock_timestamp()), coalesce((SELECT remote_lsn - '0/0'::pg_lsn FROM pg_replication_origin_status WHERE external_id = '$1'), 0)
\\watch 0.25
SQL
  "$PGBIN/psql" -X -At -F' ' -d postgres -f "$2.sql" >"$2" 2>"$2.err" &
  OSAMPLER_PID=$!
  BG_PIDS+=("$OSAMPLER_PID")
}
# wait-event samples of the consumers' server processes (WAITS=1)
start_wait_sampler() { # FILE
  WSAMPLER_PID=""
  [ "${WAITS:-0}" = 1 ] || return 0
  cat >"$1.sql" <<'SQL'
SELECT pid, CASE WHEN backend_type = 'client backend' THEN 'backend ' || application_name ELSE backend_type END,
       coalesce(wait_event_type || ':' || wait_event, 'running')
  FROM pg_stat_activity
 WHERE backend_type IN ('walsender', 'logical replication worker', 'logical replication apply worker')
    OR application_name LIKE 'pgshift/%'
\watch 0.01
SQL
  "$PGBIN/psql" -X -At -F' ' -d postgres -f "$1.sql" >"$1.raw" 2>"$1.err" &
  WSAMPLER_PID=$!
  BG_PIDS+=("$WSAMPLER_PID")
}
stop_wait_sampler() { # FILE
  [ -n "${WSAMPLER_PID:-}" ] || return 0
  kill "$WSAMPLER_PID" 2>/dev/null; wait "$WSAMPLER_PID" 2>/dev/null || true
  awk 'NF >= 3 { k = $2; for (i = 3; i < NF; i++) k = k " " $i; n[k] += 1; w[k, $NF] += 1 }
       END { for (kw in w) { split(kw, a, SUBSEP); printf "%-45s %-40s %5.1f%%\n", a[1], a[2], 100 * w[kw] / n[a[1]] } }' \
    "$1.raw" | sort -k1,1 -k3,3nr >"$1.txt"
  log "  wait events (share of samples per process): $(tr -s ' ' <"$1.txt" | tr '\n' ';')"
}
# phase_rates FILE T0 T_END: "inserts/s updates/s deletes/s" from the samples
phase_rates() {
  local b1 b2
  b1=$(q postgres "SELECT '${PHASE_END[ins]}'::pg_lsn - '0/0'"); b2=$(q postgres "SELECT '${PHASE_END[upd]}'::pg_lsn - '0/0'")
  python3 - "$1" "$2" "$3" "$b1" "$b2" "$N_INS" "$N_UPD" "$N_DEL" <<'PY2'
import sys
f, t0, tend, b1, b2, ni, nu, nd = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), *map(int, sys.argv[6:9])
rows = [tuple(map(float, l.split()[:2])) for l in open(f) if len(l.split()) >= 2]
def first(b):
    return next((t for t, l in rows if l >= b), None)
t1, t2 = first(b1), first(b2)
if t1 is None or t2 is None: print("- - -"); sys.exit()
print("%.0f %.0f %.0f" % (ni / max(t1 - t0, 1e-3), nu / max(t2 - t1, 1e-3), nd / max(tend - t2, 1e-3)))
PY2
}

# run_workload RUN: the changes, each its own transaction, with every consumer stopped.
# Sets MARKER (an LSN inside the last transaction) and TARGET (WAL position after it).
run_workload() {
  local r=$1 ph f cnt t0 lsn0
  lsn0=$(q postgres "SELECT pg_current_wal_lsn()")
  t0=$(now)
  for ph in ins:$N_INS upd:$N_UPD del:$((N_DEL - C)); do
    f=${ph%%:*}; cnt=${ph##*:}
    "$PGBENCH" -n -c "$C" -j "$C" -t $((cnt / C)) -D start_epoch="$START_EPOCH" -D span="$SPAN" -D m4="$M4" \
      -f "$W/$f.sql" src >"$OUT/workload_${r}_$f.log" 2>&1 || { tail "$OUT/workload_${r}_$f.log" >&2; die "pgbench $f failed"; }
    grep -q "number of transactions actually processed: $cnt/$cnt\$" "$OUT/workload_${r}_$f.log" ||
      die "pgbench $f: not all $cnt transactions processed (see $OUT/workload_${r}_$f.log)"
    log "workload $r: $cnt $f, $(awk '/^tps/ {printf "%.0f tps", $3}' "$OUT/workload_${r}_$f.log")"
    PHASE_END[$f]=$(q postgres "SELECT pg_current_wal_insert_lsn()")
  done
  # the last C deletes by psql; the last one reports an LSN from inside its transaction
  for _ in $(seq 2 "$C"); do q src "DELETE FROM events WHERE id = $DEL_EXPR" ; done
  local out
  out=$("${PSQL[@]}" -At -d src <<SQL
BEGIN;
WITH d AS (DELETE FROM events WHERE id = $DEL_EXPR RETURNING 1) SELECT count(*) FROM d;
SELECT pg_current_wal_insert_lsn();
COMMIT;
SQL
)
  [ "$(echo "$out" | head -1)" = 1 ] || die "the last workload DELETE hit no row"
  MARKER=$(echo "$out" | tail -1)
  TARGET=$(q postgres "SELECT pg_current_wal_lsn()")
  WL_WAL_MB=$(q postgres "SELECT round(pg_wal_lsn_diff('$TARGET', '$lsn0') / 1048576.0)")
  WL_SECS=$(calc "$(now) - $t0")
  local expect=$((N + r * (N_INS - N_DEL)))
  [ "$(q src "SELECT count(*) FROM events")" = "$expect" ] || die "src.events should hold $expect rows after the workload"
  log "workload $r: $CHANGES changes in $(fmt "$WL_SECS") s, $WL_WAL_MB MB of WAL, last transaction at $MARKER, WAL at $TARGET"
}

# table_sig DB TABLE: count and an order-independent hash of every row
table_sig() { q "$1" "SELECT count(*) || '/' || sum(hashtext(t::text)::bigint) FROM $2 t"; }

# catchup_native RUN / catchup_pgshift RUN: timed; set SECS, SECS_SLOT, CPU_* figures
NATIVE_RESULTS=(); PGSHIFT_RESULTS=()
# wait_quiet: up to QUIET_MAX s (default 300) until processes outside this
# cluster used < 0.25 CPU over 4 s (the machine is shared; builds come and go)
wait_quiet() {
  local deadline=$(( $(date +%s) + ${QUIET_MAX:-300} )) b0 c0 b1 c1 other
  while :; do
    b0=$(machine_busy); c0=$(cluster_cpu); sleep 4; b1=$(machine_busy); c1=$(cluster_cpu)
    other=$(calc "($b1 - $b0 - ($c1 - $c0)) / 4")
    if awk "BEGIN { exit !($other < 0.25) }"; then return 0; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "machine still busy (other processes use $(fmt "$other" 2) CPUs); measuring anyway"; return 0
    fi
  done
}
# CPU seconds per cluster process (and pgshift), for where the time goes
proc_snap() {
  local pm p; pm=$(head -1 "$PGSHIFT_CLUSTER_DIR/data/postmaster.pid")
  for p in $(ps -o pid= --ppid "$pm") ${JOB_PID:-}; do
    [ -r "/proc/$p/stat" ] || continue
    echo "$p $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-60 | tr ' ' '_')"
  done | sort
}
proc_diff() { # before after: processes that used > 0.3 s
  join -a 2 <(echo "$1") <(echo "$2") | awk -v hz="$(getconf CLK_TCK)" '
    NF == 5 { d = ($4 - $2) / hz; n = $5 } NF == 3 { d = $2 / hz; n = $3 }
    d > 0.3 { printf "%s %.1f s; ", n, d }'
}
PERF_PID=""
perf_start() { # NAME
  [ "${PROFILE:-0}" = 1 ] || return 0
  perf record -F 499 -g -a -o "$OUT/perf_$1.data" >"$OUT/perf_$1.log" 2>&1 &
  PERF_PID=$!
  BG_PIDS+=("$PERF_PID")
  sleep 0.5
}
perf_stop() { # NAME PID...
  [ -n "$PERF_PID" ] || return 0
  local name=$1 p; shift
  kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""
  for p in "$@"; do
    { echo "=== pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80)"
      echo "--- share of its samples by object"
      perf report -i "$OUT/perf_$name.data" --stdio --no-children --pid "$p" --percentage relative --sort dso -g none \
        --percent-limit 2 2>/dev/null | grep -v '^#' | grep -v '^$' | head -10 || true
      echo "--- by symbol (self)"
      perf report -i "$OUT/perf_$name.data" --stdio --no-children --pid "$p" --percentage relative --sort sym -g none \
        --percent-limit 1.2 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 || true; } >>"$OUT/perf_$name.txt"
  done
}
slot_stats() { q postgres "SELECT 'txns ' || total_txns || ', decoded ' || pg_size_pretty(total_bytes) || ', spilled ' || spill_txns || ' txns/' || pg_size_pretty(spill_bytes) || ', streamed ' || stream_txns || ' txns' FROM pg_stat_replication_slots WHERE slot_name = '$1'"; }
cpu_window_start() { CW_PROCS=$(proc_snap); CW_T0=$(now); CW_BUSY0=$(machine_busy); CW_CL0=$(cluster_cpu); CW_LOAD=$(loadavg); }
cpu_window_end() { # extra cpu of our own non-cluster processes
  local t1 busy1 cl1
  t1=$(now); busy1=$(machine_busy); cl1=$(cluster_cpu)
  CW_WALL=$(calc "$t1 - $CW_T0")
  CW_CLUSTER=$(calc "$cl1 - $CW_CL0")
  CW_OTHER=$(calc "$busy1 - $CW_BUSY0 - ($cl1 - $CW_CL0) - ${1:-0}")
  log "  CPU by process: $(proc_diff "$CW_PROCS" "$(proc_snap)")"
}
# wait_bg HEALTHCHECK SQL: runs SQL (a bench_wait call) in the background and
# calls HEALTHCHECK every 0.2 s; prints the result. A failed check stops the wait.
wait_bg() {
  local check=$1 sql=$2 wpid
  q postgres "SET application_name = 'bench_wait'; $sql" >"$OUT/wait.out" 2>&1 &
  wpid=$!
  while kill -0 "$wpid" 2>/dev/null; do
    if ! "$check"; then
      q postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bench_wait'" >/dev/null
      wait "$wpid" 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
  wait "$wpid" || { cat "$OUT/wait.out" >&2; die "bench_wait failed"; }
  tail -1 "$OUT/wait.out"
}
LOG_OFF=0
server_log_mark() { LOG_OFF=$(stat -c %s "$PGSHIFT_CLUSTER_DIR/server.log"); }
# the apply worker logs an ERROR and restarts every 5 s when it cannot apply a change
native_healthy() { ! tail -c +$((LOG_OFF + 1)) "$PGSHIFT_CLUSTER_DIR/server.log" | grep -q '"logical replication worker" (PID [0-9]*) exited with exit code 1'; }
native_failed() {
  tail -c +$((LOG_OFF + 1)) "$PGSHIFT_CLUSTER_DIR/server.log" | grep -A3 ERROR | head -8 >&2
  die "the native apply worker failed (server log: $PGSHIFT_CLUSTER_DIR/server.log)"
}

catchup_native() {
  local r=$1 t0 res ws ap
  q postgres "CHECKPOINT"
  wait_quiet
  log "native catch-up $r: ENABLE (load average $(loadavg))"
  cpu_window_start
  t0=$(now)
  server_log_mark
  q postgres "SELECT pg_stat_reset_replication_slot('bench_sub')" >/dev/null
  perf_start "native_$r"
  start_origin_sampler "$NATIVE_ORIGIN" "$OUT/origin_native_$r"
  start_wait_sampler "$OUT/waits_native_$r"
  q dst "ALTER SUBSCRIPTION bench_sub ENABLE"
  res=$(wait_bg native_healthy "SELECT t_origin || ' ' || coalesce(t_slot::text, 'NaN') FROM bench_wait('$NATIVE_ORIGIN', '$MARKER', 'bench_sub', '$TARGET', 3600)") ||
    native_failed
  ws=$(q postgres "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'bench_sub'")
  ap=$(q dst "SELECT pid FROM pg_stat_subscription WHERE subname = 'bench_sub' AND relid IS NULL")
  local ws_cpu ap_cpu; ws_cpu=$(proc_cpu "$ws"); ap_cpu=$(proc_cpu "$ap")
  cpu_window_end 0
  perf_stop "native_$r" "$ws" "$ap"
  stop_wait_sampler "$OUT/waits_native_$r"
  log "native catch-up $r: slot statistics: $(slot_stats bench_sub)"
  SECS=$(calc "${res% *} - $t0"); SECS_SLOT=$(calc "${res#* } - $t0")
  kill "$OSAMPLER_PID" 2>/dev/null; wait "$OSAMPLER_PID" 2>/dev/null || true
  local rates; rates=$(phase_rates "$OUT/origin_native_$r" "$t0" "${res% *}")
  log "native catch-up $r: by phase (changes/s): inserts, updates, deletes = $rates"
  q dst "ALTER SUBSCRIPTION bench_sub DISABLE"
  until [ "$(q postgres "SELECT active FROM pg_replication_slots WHERE slot_name = 'bench_sub'")" = f ]; do sleep 0.2; done
  local rate; rate=$(calc "$CHANGES / $SECS")
  NATIVE_RESULTS+=("$r|$(fmt "$SECS" 2)|$(fmt "$rate" 0)|${rates// / / }|$(fmt "$SECS_SLOT" 2)|walsender $ws_cpu s, apply worker $ap_cpu s|$(fmt "$CW_CLUSTER")|$(fmt "$CW_OTHER")|$CW_LOAD")
  log "native catch-up $r: $(fmt "$SECS" 2) s = $(fmt "$rate" 0) changes/s (slot confirmed at $(fmt "$SECS_SLOT" 2) s); CPU walsender $ws_cpu s, apply worker $ap_cpu s; cluster $(fmt "$CW_CLUSTER") s, other processes $(fmt "$CW_OTHER") s in $(fmt "$CW_WALL") s"
}
catchup_pgshift() {
  local r=$1 t0 res ws bk pg_cpu bk_cpu ws_cpu joblog=$OUT/pgshift_events.log
  q postgres "CHECKPOINT"
  wait_quiet
  log "pgshift catch-up $r: run (load average $(loadavg))"
  echo "=== catch-up run $r" >>"$joblog"
  cpu_window_start
  q postgres "SELECT pg_stat_reset_replication_slot('$PGSHIFT_SLOT')" >/dev/null
  perf_start "pgshift_$r"
  start_origin_sampler "$PGSHIFT_ORIGIN" "$OUT/origin_pgshift_$r"
  start_wait_sampler "$OUT/waits_pgshift_$r"
  t0=$(now)
  start_pgshift "$OUT/events.ini" "$joblog"
  if ! res=$(wait_bg pgshift_alive "SELECT t_origin || ' ' || coalesce(t_slot::text, 'NaN') FROM bench_wait('$PGSHIFT_ORIGIN', '$MARKER', '$PGSHIFT_SLOT', '$TARGET', 3600)"); then
    wait "$JOB_PID" 2>/dev/null || true; JOB_PID=""
    "$PGSHIFT_BIN" status -c "$OUT/events.ini" --json >"$OUT/pgshift_status_failed.json" 2>&1 || true
    tail -40 "$joblog" >&2
    die "pgshift exited during catch-up run $r (log: $joblog, status: $OUT/pgshift_status_failed.json)"
  fi
  ws=$(q postgres "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$PGSHIFT_SLOT'")
  ws_cpu=$(proc_cpu "$ws"); pg_cpu=$(proc_cpu "$JOB_PID")
  # CPU per pgshift thread (comm names as the threads set them)
  local threads="" tdir
  for tdir in /proc/"$JOB_PID"/task/*; do
    threads+="$(cat "$tdir/comm" 2>/dev/null) $(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "$tdir/stat" 2>/dev/null) s; "
  done
  log "pgshift catch-up $r: CPU by thread: $threads"
  bk_cpu=0
  for bk in $(q postgres "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgshift/events' AND backend_type = 'client backend'"); do
    bk_cpu=$(calc "$bk_cpu + $(proc_cpu "$bk")")
  done
  cpu_window_end "$pg_cpu"
  # shellcheck disable=SC2046
  perf_stop "pgshift_$r" "$ws" "$JOB_PID" $(q postgres "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgshift/events' AND backend_type = 'client backend'")
  stop_wait_sampler "$OUT/waits_pgshift_$r"
  log "pgshift catch-up $r: slot statistics: $(slot_stats "$PGSHIFT_SLOT")"
  SECS=$(calc "${res% *} - $t0"); SECS_SLOT=$(calc "${res#* } - $t0")
  kill "$OSAMPLER_PID" 2>/dev/null; wait "$OSAMPLER_PID" 2>/dev/null || true
  local rates; rates=$(phase_rates "$OUT/origin_pgshift_$r" "$t0" "${res% *}")
  log "pgshift catch-up $r: by phase (changes/s): inserts, updates, deletes = $rates"
  "$PGSHIFT_BIN" status -c "$OUT/events.ini" --json >"$OUT/pgshift_status_$r.json" 2>&1 || true
  stop_pgshift "$joblog"
  local rate; rate=$(calc "$CHANGES / $SECS")
  PGSHIFT_RESULTS+=("$r|$(fmt "$SECS" 2)|$(fmt "$rate" 0)|${rates// / / }|$(fmt "$SECS_SLOT" 2)|pgshift $pg_cpu s, its backends $(fmt "$bk_cpu" 2) s, walsender $ws_cpu s|$(fmt "$CW_CLUSTER")|$(fmt "$CW_OTHER")|$CW_LOAD")
  log "pgshift catch-up $r: $(fmt "$SECS" 2) s = $(fmt "$rate" 0) changes/s (slot confirmed at $(fmt "$SECS_SLOT" 2) s); CPU pgshift $pg_cpu s, its backends $(fmt "$bk_cpu" 2) s, walsender $ws_cpu s; cluster $(fmt "$CW_CLUSTER") s, other processes $(fmt "$CW_OTHER") s in $(fmt "$CW_WALL") s"
}
verify_targets() {
  local s d p
  s=$(table_sig src events); d=$(table_sig dst events); p=$(table_sig src events__pgshift)
  log "verify: src $s, native $d, pgshift $p"
  [ "$s" = "$d" ] || die "native target differs from the source ($d vs $s)"
  [ "$s" = "$p" ] || die "pgshift shadow differs from the source ($p vs $s)"
}

# ---------------------------------------------------------------- 4. catch-up runs
for r in $(seq 1 "$RUNS"); do
  align_consumers
  log "run $r: workload with both consumers stopped"
  run_workload "$r"
  if [ $((r % 2)) = 1 ]; then catchup_native "$r"; catchup_pgshift "$r"
  else catchup_pgshift "$r"; catchup_native "$r"; fi
  [ "$VERIFY" = 1 ] && verify_targets
done
WL_DESC="$N_INS INSERT + $N_UPD UPDATE + $N_DEL DELETE = $CHANGES single-row transactions by pgbench -c $C (last run: $WL_WAL_MB MB of WAL, issued in $(fmt "$WL_SECS") s)"

# free the events consumers before the steady-state part
q dst "DROP SUBSCRIPTION bench_sub" 2>/dev/null
"$PGSHIFT_BIN" abort -c "$OUT/events.ini" >>"$OUT/pgshift_events.log" 2>&1 || log "warning: pgshift abort of the events job failed (see pgshift_events.log)"
q dst "DROP TABLE events"
q src "DROP PUBLICATION bench_pub"

# ---------------------------------------------------------------- 5. steady state
STEADY_ROWS=()
if [ "$STEADY" = 1 ]; then
  log "steady state: pgbench -i -s $SCALE in src"
  "$PGBENCH" -i -q -s "$SCALE" src >"$OUT/pgbench_init.log" 2>&1
  STEP=$((SCALE * 100000 / 10))
  # native: partitioned pgbench_accounts in dst (RANGE on aid, 10 partitions), same rows
  "${PSQL[@]}" -d dst -v step="$STEP" -v top="$((SCALE * 100000))" <<'SQL'
CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler character(84), PRIMARY KEY (aid)) PARTITION BY RANGE (aid);
SELECT format('CREATE TABLE pgbench_accounts_%s PARTITION OF pgbench_accounts FOR VALUES FROM (%s) TO (%s)', lo / :step, lo, lo + :step)
  FROM generate_series(0, :top, :step) lo \gexec
SQL
  "$PGBIN/psql" -X -d src -c "COPY pgbench_accounts TO STDOUT (FORMAT binary)" |
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d dst -c "COPY pgbench_accounts FROM STDIN (FORMAT binary)"
  q dst "VACUUM (ANALYZE) pgbench_accounts"
  q src "CREATE PUBLICATION pgb_pub FOR TABLE pgbench_accounts"
  q src "SELECT pg_create_logical_replication_slot('pgb_sub', 'pgoutput')" >/dev/null
  q dst "CREATE SUBSCRIPTION pgb_sub CONNECTION 'host=$CONSUMER_HOST port=$PGPORT dbname=src user=$PGUSER' PUBLICATION pgb_pub
         WITH (create_slot = false, slot_name = 'pgb_sub', copy_data = false, enabled = false)"
  PGB_NATIVE_ORIGIN=$(q dst "SELECT 'pg_' || oid FROM pg_subscription WHERE subname = 'pgb_sub'")
  # pgshift: a job converting pgbench_accounts (RANGE on aid, same step)
  job_ini "$OUT/accounts.ini" pgbench_accounts aid "$STEP"
  ACC_LOG=$OUT/pgshift_accounts.log
  log "steady state: pgshift initial copy of pgbench_accounts (not timed)"
  start_pgshift "$OUT/accounts.ini" "$ACC_LOG"
  wait_sync pgbench_accounts "$ACC_LOG"
  stop_pgshift "$ACC_LOG"
  q src "VACUUM (ANALYZE) pgbench_accounts__pgshift"
  PGB_PGSHIFT_ORIGIN=$(q postgres "SELECT roname FROM pg_replication_origin WHERE roname ~ '^pgshift_pgbench_accounts_[0-9a-f]{8}\$'")
  PGB_PGSHIFT_SLOT=$(q postgres "SELECT slot_name FROM pg_replication_slots WHERE slot_name ~ '^pgshift_pgbench_accounts_[0-9a-f]{8}\$'")

  # sample LSNs every 0.2 s in one session: time, WAL position, consumer's origin
  # progress (commit end LSN of the last applied transaction), walsender replay_lag
  start_sampler() { # ORIGIN APPNAME FILE
    cat >"$3.sql" <<SQL
SELECT extract(epoch FROM clock_timestamp()), pg_current_wal_lsn() - '0/0'::pg_lsn,
       coalesce((SELECT remote_lsn FROM pg_replication_origin_status WHERE external_id = '$1') - '0/0'::pg_lsn, 0),
       coalesce((SELECT extract(epoch FROM replay_lag)::text FROM pg_stat_replication WHERE application_name = '$2'), '')
\\watch 0.2
SQL
    "$PGBIN/psql" -X -At -F' ' -d postgres -f "$3.sql" >"$3" 2>"$3.err" &
    SAMPLER_PID=$!
    BG_PIDS+=("$SAMPLER_PID")
  }
  stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; }
  # lag of each sample: now minus the time the WAL passed the applied position
  # (interpolated between samples); percentiles p50/p99
  lag_stats() {
    python3 - "$1" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) >= 3:
        try: rows.append((float(p[0]), float(p[1]), float(p[2]), float(p[3]) if len(p) > 3 else None))
        except ValueError: pass
lags, rl = [], []
for i, (t, w, a, r) in enumerate(rows):
    if r is not None: rl.append(r)
    if a == 0: continue
    if a >= w: lags.append(0.0); continue
    j = next((j for j in range(i + 1) if rows[j][1] >= a), None)
    if j is None or j == 0: continue
    t0, w0 = rows[j - 1][0], rows[j - 1][1]; t1, w1 = rows[j][0], rows[j][1]
    lags.append(max(0.0, t - (t0 + (a - w0) / (w1 - w0) * (t1 - t0) if w1 > w0 else t1)))
def pct(v, p):
    import math
    if not v: return float('nan')
    v = sorted(v); return v[max(0, math.ceil(p / 100 * len(v)) - 1)]
print("%.3f %.3f %.3f %d %.3f %.3f" % (pct(lags, 50), pct(lags, 99), max(lags) if lags else float('nan'), len(lags), pct(rl, 50), pct(rl, 99)))
PY
  }
  steady_run() { # MODE ROUND
    local mode=$1 r=$2 origin="" app="" slot="" lsn tps lagline drain pcpu=0 t0 f=$OUT/steady_${1}_$2
    case $mode in
      native) q dst "ALTER SUBSCRIPTION pgb_sub ENABLE"
              origin=$PGB_NATIVE_ORIGIN; app=pgb_sub; slot=pgb_sub
              lsn=$(q postgres "SELECT pg_current_wal_lsn()")
              server_log_mark
              wait_bg native_healthy "SELECT bench_wait(NULL, NULL, 'pgb_sub', '$lsn', 1800)" >/dev/null || native_failed ;;
      pgshift) echo "=== steady $r" >>"$ACC_LOG"
               start_pgshift "$OUT/accounts.ini" "$ACC_LOG"
               wait_sync pgbench_accounts "$ACC_LOG"
               origin=$PGB_PGSHIFT_ORIGIN; app=pgshift/pgbench_accounts; slot=$PGB_PGSHIFT_SLOT ;;
    esac
    q src "VACUUM pgbench_branches, pgbench_tellers"
    q src "TRUNCATE pgbench_history"
    q postgres "CHECKPOINT"
    wait_quiet
    log "steady $mode $r: pgbench -c 4 -j 2 -T $T (load average $(loadavg))"
    [ "$mode" = pgshift ] && pcpu=$(proc_cpu "$JOB_PID")
    cpu_window_start
    /usr/bin/time -f '%U %S' -o "$f.time" "$PGBENCH" -n -c 4 -j 2 -T "$T" src >"$f.pgbench.log" 2>&1 &
    local bpid=$!
    # lag is sampled only while pgbench writes: when the source is idle, WAL
    # that carries no transaction (running_xacts) would look like lag
    sleep 1
    [ "$mode" = none ] || start_sampler "$origin" "$app" "$f.samples"
    wait "$bpid" || { tail "$f.pgbench.log" >&2; die "pgbench failed"; }
    [ "$mode" = none ] || stop_sampler
    [ "$mode" = pgshift ] && pcpu=$(calc "$(proc_cpu "$JOB_PID") - $pcpu")
    sleep 1   # let the postmaster reap pgbench's backends, so that their CPU is counted
    local bcpu; bcpu=$(awk '{printf "%.2f", $1 + $2}' "$f.time")
    cpu_window_end "$(calc "$pcpu + $bcpu")"
    tps=$(awk '/^tps/ {printf "%.0f", $3; exit}' "$f.pgbench.log")
    if [ "$mode" = none ]; then lagline="- - - - - -"; drain=-
    else
      lsn=$(q postgres "SELECT pg_current_wal_lsn()"); t0=$(now)
      if [ "$mode" = native ]; then
        wait_bg native_healthy "SELECT bench_wait(NULL, NULL, '$slot', '$lsn', 1800)" >/dev/null || native_failed
      else
        wait_bg pgshift_alive "SELECT bench_wait(NULL, NULL, '$slot', '$lsn', 1800)" >/dev/null || { tail -30 "$ACC_LOG" >&2; die "pgshift exited during the steady-state run"; }
      fi
      drain=$(fmt "$(calc "$(now) - $t0")" 2)
      lagline=$(lag_stats "$f.samples")
    fi
    case $mode in
      native) q dst "ALTER SUBSCRIPTION pgb_sub DISABLE"
              until [ "$(q postgres "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgb_sub'")" = f ]; do sleep 0.2; done ;;
      pgshift) stop_pgshift "$ACC_LOG" ;;
    esac
    # shellcheck disable=SC2086
    set -- $lagline
    STEADY_ROWS+=("$mode|$r|$tps|$1|$2|$3|$4|$5|$6|$drain|$(fmt "$CW_CLUSTER")|$(fmt "$pcpu")|$(fmt "$bcpu")|$(fmt "$CW_OTHER")|$CW_LOAD")
    log "steady $mode $r: tps $tps; lag p50 $1 s, p99 $2 s, max $3 s ($4 samples; walsender replay_lag p50 $5 p99 $6); caught up ${drain} s after pgbench; CPU cluster $(fmt "$CW_CLUSTER") s, pgshift $(fmt "$pcpu") s, pgbench $bcpu s, other processes $(fmt "$CW_OTHER") s"
  }
  for r in $(seq 1 "$RUNS"); do
    if [ $((r % 2)) = 1 ]; then order="none native pgshift"; else order="pgshift native none"; fi
    for m in $order; do steady_run "$m" "$r"; done
  done
fi

# ---------------------------------------------------------------- 6. report
median() { sort -n | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
NATIVE_RATE=$(printf '%s\n' "${NATIVE_RESULTS[@]}" | cut -d'|' -f3 | median)
PGSHIFT_RATE=$(printf '%s\n' "${PGSHIFT_RESULTS[@]}" | cut -d'|' -f3 | median)
RATIO=$(calc "$PGSHIFT_RATE / $NATIVE_RATE")
{
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC'): \`${CMDLINE}\` (pgshift $GIT_REV$([ "$GIT_DIRTY" -gt 0 ] && echo " + $GIT_DIRTY uncommitted changes"), CMAKE_BUILD_TYPE=$BUILD_TYPE)."
  echo
  echo "- Machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -r); shared with other work: load average at the start $START_LOAD; the benchmark ran at nice $(ps -o ni= $$ | tr -d ' ') (cluster, pgshift and pgbench alike)."
  echo "- ${PG_VERSION_STR%%,*}; one cluster from scripts/pgcluster.sh plus bench settings: $PG_SETTINGS. fsync and full_page_writes are off for both sides alike; the subscription uses its defaults (synchronous_commit off, binary off, streaming off). Both consumers connect to the source over $( [ "$LINK" = unix ] && echo "the cluster's Unix-domain socket" || echo "TCP to 127.0.0.1")."
  echo "- Table: src.events, $N rows (heap $HEAP_MB MB, payload avg $PAYLOAD_B B), REPLICA IDENTITY USING INDEX (id, created_at). Targets: dst.events (native) and events__pgshift (pgshift), each $SHADOW_PARTS monthly partitions, PK (id, created_at), nothing else."
  echo "- Workload per run: $WL_DESC. Catch-up time: from ALTER SUBSCRIPTION ENABLE / starting \`pgshift run\` until the consumer's replication origin passes the last workload transaction (polled every 20 ms); 'slot' is when the slot's confirmed_flush_lsn reached the WAL position after the workload."
  echo
  echo "| consumer | run | catch-up s | changes/s | INSERT / UPDATE / DELETE phase, changes/s | slot confirmed s | CPU s of the consumer's processes | cluster CPU s | other processes' CPU s | load avg before |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for x in "${NATIVE_RESULTS[@]}"; do echo "| native apply worker | ${x//|/ | } |"; done
  for x in "${PGSHIFT_RESULTS[@]}"; do echo "| pgshift | ${x//|/ | } |"; done
  echo
  echo "**pgshift / native = $(fmt "$RATIO" 2)×** (median changes/s: pgshift $PGSHIFT_RATE, native $NATIVE_RATE; goal ≥ 2.0×)."
  if [ "$STEADY" = 1 ]; then
    echo
    echo "Steady state: \`pgbench -n -c 4 -j 2 -T $T\` TPC-B at scale $SCALE on src (branches and tellers vacuumed, history truncated first); native subscribes pgbench_accounts into a partitioned copy in dst, pgshift runs a job converting pgbench_accounts (RANGE on aid, step $STEP). Each consumer was caught up before pgbench started. Lag is sampled every 0.2 s from 1 s after pgbench starts until it ends: now minus the time the source WAL passed the consumer's origin progress (interpolated between samples); replay_lag is the walsender's own figure."
    echo
    echo "| consumer | round | tps | lag p50 s | lag p99 s | lag max s | samples | walsender replay_lag p50 s | p99 s | caught up after pgbench s | cluster CPU s | pgshift CPU s | pgbench CPU s | other processes' CPU s | load avg before |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for x in "${STEADY_ROWS[@]}"; do echo "| ${x//|/ | } |"; done
  fi
} >"$OUT/results.md"
cat "$OUT/results.md"

if [ -n "$DOC" ]; then
  python3 - "$DOC" "$OUT/results.md" <<'PY'
import os, sys, fcntl
doc, res = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
head = "## Applier: catch-up vs native logical replication"
begin, end = "<!-- apply_bench.sh results: begin -->", "<!-- apply_bench.sh results: end -->"
block = begin + "\n" + res + "\n" + end
with open(doc, "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.seek(0); text = f.read()
    if begin in text and end in text:
        a = text.index(begin); b = text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    elif head in text:
        a = text.index(head) + len(head)
        text = text[:a] + "\n\n" + block + "\n" + text[a:]
    else:
        if not text: text = "# pgshift benchmarks\n"
        text = text.rstrip("\n") + "\n\n" + head + "\n\n`bench/apply_bench.sh` (results block below is rewritten by each run).\n\n" + block + "\n"
    f.seek(0); f.truncate(); f.write(text)
PY
  log "results written to $DOC"
fi
log "done; logs and samples in $OUT"
