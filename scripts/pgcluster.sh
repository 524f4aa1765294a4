#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster on a free loopback port, for the demo and
# the tests. As root the server runs as the `postgres` OS user (PostgreSQL
# refuses root), in a fresh temporary directory.
#
#   scripts/pgcluster.sh start STATE_DIR   # writes STATE_DIR/env (PGHOST, PGPORT, ...)
#   scripts/pgcluster.sh stop STATE_DIR    # stops the server and removes its data
set -euo pipefail

cmd=${1:?usage: pgcluster.sh start|stop STATE_DIR}
state=${2:?usage: pgcluster.sh start|stop STATE_DIR}

pgbin() {
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/16/bin /usr/lib/postgresql/17/bin \
           /usr/lib/postgresql/14/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  echo "pgcluster: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql-15)" >&2
  exit 1
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local p
  for p in $(shuf -i 20000-29999 -n 200); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "pgcluster: no free port found" >&2
  exit 1
}

start() {
  local bin dir port
  bin=$(pgbin)
  mkdir -p "$state"
  if [ -f "$state/env" ]; then stop || true; fi
  dir=$(mktemp -d /tmp/pgshift-cluster.XXXXXX)
  chmod 755 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
  port=$(free_port)
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
max_wal_senders = 20
max_replication_slots = 20
max_connections = 200
shared_buffers = 256MB
max_wal_size = 4GB
fsync = off
full_page_writes = off
log_min_messages = warning
CONF
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  cat >"$state/env" <<ENV
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=postgres
export PGDATABASE=postgres
export PGBIN=$bin
export PGSHIFT_CLUSTER_DIR=$dir
ENV
  echo "pgcluster: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir/data)"
}

stop() {
  [ -f "$state/env" ] || return 0
  # shellcheck disable=SC1091
  . "$state/env"
  if [ -d "$PGSHIFT_CLUSTER_DIR/data" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$PGSHIFT_CLUSTER_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PGSHIFT_CLUSTER_DIR"
  rm -f "$state/env"
  echo "pgcluster: stopped"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: pgcluster.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
