#!/usr/bin/env bash
# The exactly-once drill: RUNS (default 20) SIGKILLs of a job under pgbench
# load, each followed by a resume and a row-by-row comparison of shadow and
# source. Starts its own throwaway cluster; builds first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-20}
"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh" "$ROOT/build" >/dev/null
STATE=$(mktemp -d /tmp/pgshift-drill.XXXXXX)
trap '"$ROOT/scripts/pgcluster.sh" stop "$STATE/cluster"; rm -rf "$STATE"' EXIT
"$ROOT/scripts/pgcluster.sh" start "$STATE/cluster"
PGSHIFT_BIN="$ROOT/build/pgshift" PGSHIFT_CLUSTER="$STATE/cluster" PGSHIFT_SRC="$ROOT" \
  DRILL_RUNS="$RUNS" bash "$ROOT/tests/integration/t_drill_kill.sh"
