#!/usr/bin/env bash
# Snapshot copy benchmark (issue 7). In one run, on one cluster, the same
# 5,000,000-row event table (workload W1 of /work/shared/baselines: id
# bigserial primary key, created_at over 12 months ascending with id,
# tenant_id, type, jsonb payload ~200 B, plus an index on (tenant_id,
# created_at)) is copied into 12 monthly partitions with PRIMARY KEY (id,
# created_at) and an index on (tenant_id, created_at):
#   a) INSERT INTO events_p SELECT * FROM events         (indexes present)
#   b) psql COPY TO STDOUT (binary) | psql COPY FROM STDIN (binary), same target
#   p) pgshift run: from start until the job reaches phase sync (prepare,
#      chunked parallel copy, parallel index build)
# each RUNS times (default 1), after TRUNCATE (a, b) or abort (p) and a
# CHECKPOINT, and prints the medians and the ratio a / p.
#
#   bench/copy_bench.sh [PGSHIFT_BIN]
#   env: N (rows, 5000000), RUNS (1), WORKERS (pgshift [copy] workers, 2),
#        CLUSTER (state dir of scripts/pgcluster.sh; default: a new cluster in
#        /tmp/pgshift-copy-bench, started at nice -n -10 as root and stopped at
#        the end; an existing one is reused and kept, loaded once)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${PGSHIFT_BIN:-$SRC/build-bench/pgshift}}
N=${N:-5000000}
RUNS=${RUNS:-1}
WORKERS=${WORKERS:-2}
CLUSTER=${CLUSTER:-/tmp/pgshift-copy-bench}
[ -x "$BIN" ] || { echo "copy_bench: no pgshift binary at $BIN (build it, or pass its path)" >&2; exit 2; }

own_cluster=0
if [ ! -f "$CLUSTER/env" ]; then
  own_cluster=1
  if [ "$(id -u)" -eq 0 ]; then nice -n -10 bash "$SRC/scripts/pgcluster.sh" start "$CLUSTER"
  else bash "$SRC/scripts/pgcluster.sh" start "$CLUSTER"; fi
fi
# shellcheck disable=SC1091
. "$CLUSTER/env"
cleanup() {
  [ -n "${JOB_PID:-}" ] && kill "$JOB_PID" 2>/dev/null || true
  [ "$own_cluster" = 1 ] && bash "$SRC/scripts/pgcluster.sh" stop "$CLUSTER"
  true
}
trap cleanup EXIT
PSQL="psql -X -q -v ON_ERROR_STOP=1 -d bench"
q() { $PSQL -Atc "$1"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.2f'; }
median() { sort -n | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }

if [ "$(psql -X -Atc "SELECT count(*) FROM pg_database WHERE datname = 'bench'")" = 0 ] ||
   [ "$(q "SELECT to_regclass('events') IS NOT NULL AND (SELECT count(*) FROM events) = $N" 2>/dev/null)" != t ]; then
  echo "loading $N rows (W1) ..."
  psql -X -q -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
  $PSQL -v n="$N" <<'SQL'
CREATE TABLE bench_meta AS SELECT date_trunc('month', now()) - interval '11 months' AS start_month;
CREATE TABLE events(id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, tenant_id int NOT NULL,
                    type text NOT NULL, payload jsonb NOT NULL);
INSERT INTO events(created_at, tenant_id, type, payload)
SELECT m.start_month + ((g - 1)::float8 / :n) * ((m.start_month + interval '12 months' - interval '1 hour') - m.start_month) + random() * interval '10 min',
       1 + (random() * 999)::int,
       (ARRAY['page_view','click','signup','login','logout','purchase','error','api_call'])[1 + (g % 8)],
       jsonb_build_object('user_id', (random()*1e6)::int, 'session', md5(g::text),
                          'url', '/app/' || (g % 1000) || '/item/' || (random()*1e5)::int,
                          'ua', 'Mozilla/5.0 (X11; Linux x86_64) bench/' || (g % 50),
                          'amount', round((random()*1000)::numeric, 2), 'ok', (g % 7 <> 0))
FROM bench_meta m, generate_series(1, :n) g;
CREATE INDEX ON events (tenant_id, created_at);
VACUUM (ANALYZE) events;
SQL
fi
if [ "$(q "SELECT to_regclass('events_p') IS NOT NULL")" != t ]; then
  $PSQL -v tbl=events_p -v start="$(q "SELECT start_month FROM bench_meta")" \
    -f /dev/stdin <<'SQL'
SELECT format('CREATE TABLE %I (id bigint NOT NULL, created_at timestamptz NOT NULL, tenant_id int NOT NULL, type text NOT NULL, payload jsonb NOT NULL, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)', :'tbl') \gexec
SELECT format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', :'tbl' || '_' || to_char(s, 'YYYYMM'), :'tbl', s, s + interval '1 month')
  FROM generate_series(:'start'::timestamptz, :'start'::timestamptz + interval '11 months', interval '1 month') s \gexec
SELECT format('CREATE INDEX ON %I (tenant_id, created_at)', :'tbl') \gexec
SQL
fi
heap_mb=$(q "SELECT pg_relation_size('events') >> 20")

job=$(mktemp -d)
cat >"$job/job.ini" <<INI
[source]
dsn = host=$PGHOST port=$PGPORT dbname=bench user=$PGUSER
table = events
[partitioning]
column = created_at
interval = 1 month
premake = 0
[copy]
workers = $WORKERS
[cutover]
mode = manual
reverse = false
[safety]
; the slot retains the copy's own WAL until the stream starts
max_retained_wal = 64GB
INI

run_insert_select() {
  q "TRUNCATE events_p"; q "CHECKPOINT"
  local t0; t0=$(now)
  $PSQL -c "INSERT INTO events_p SELECT * FROM events"
  since "$t0"
  [ "$(q "SELECT count(*) FROM events_p")" = "$N" ] || { echo "insert_select: row count" >&2; exit 1; }
}
run_copy_pipe() {
  q "TRUNCATE events_p"; q "CHECKPOINT"
  local t0; t0=$(now)
  $PSQL -c "COPY events TO STDOUT (FORMAT binary)" | $PSQL -c "COPY events_p FROM STDIN (FORMAT binary)"
  since "$t0"
  [ "$(q "SELECT count(*) FROM events_p")" = "$N" ] || { echo "copy_pipe: row count" >&2; exit 1; }
}
run_pgshift() {
  "$BIN" abort -c "$job/job.ini" >/dev/null 2>&1 || true
  q "TRUNCATE events_p"; q "CHECKPOINT"
  local t0 secs; t0=$(now)
  "$BIN" run -c "$job/job.ini" >"$job/run.log" 2>&1 &
  JOB_PID=$!
  until [ "$(q "SELECT phase FROM pgshift.jobs WHERE job_name = 'events'" 2>/dev/null)" = sync ]; do
    kill -0 "$JOB_PID" 2>/dev/null || { tail -20 "$job/run.log" >&2; exit 1; }
    sleep 0.1
  done
  secs=$(since "$t0")
  kill -TERM "$JOB_PID"; wait "$JOB_PID" 2>/dev/null || true; JOB_PID=
  [ "$(q "SELECT count(*) FROM events__pgshift")" = "$N" ] || { echo "pgshift: row count" >&2; exit 1; }
  grep -E "copy: [0-9]+ rows|index: " "$job/run.log" | sed 's/^/    /' >&2
  "$BIN" abort -c "$job/job.ini" >/dev/null 2>&1
  echo "$secs"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB; PostgreSQL $(q "SHOW server_version");" \
     "events $N rows, heap $heap_mb MB; pgshift [copy] workers = $WORKERS"
echo "load before: $(uptime | sed 's/.*load average: //')"
declare -A times
for r in $(seq 1 "$RUNS"); do
  a=$(run_insert_select); echo "run $r: INSERT ... SELECT        ${a} s"; times[a]+="$a "
  b=$(run_copy_pipe);     echo "run $r: psql binary COPY pipe   ${b} s"; times[b]+="$b "
  p=$(run_pgshift);       echo "run $r: pgshift until sync      ${p} s"; times[p]+="$p "
done
echo "load after: $(uptime | sed 's/.*load average: //')"
ma=$(echo "${times[a]}" | tr ' ' '\n' | grep . | median)
mb=$(echo "${times[b]}" | tr ' ' '\n' | grep . | median)
mp=$(echo "${times[p]}" | tr ' ' '\n' | grep . | median)
printf 'median of %s: INSERT ... SELECT %s s, COPY pipe %s s, pgshift %s s; speed-up vs INSERT ... SELECT %.2fx, vs COPY pipe %.2fx\n' \
  "$RUNS" "$ma" "$mb" "$mp" "$(echo "$ma / $mp" | bc -l)" "$(echo "$mb / $mp" | bc -l)"
rm -rf "$job"
