# Concurrent write load for the demo and the scenario tests: pgbench's
# standard TPC-B script in back-to-back short runs until stopped, so each run
# reports its own failures. Source this file; needs PGBIN and PG* variables.

# start_load DB CLIENTS LOGDIR: starts the load in the background.
start_load() {
  local db=$1 clients=$2 logdir=$3
  mkdir -p "$logdir"
  rm -f "$logdir/stop" "$logdir"/run.*.log
  (
    i=0
    while [ ! -f "$logdir/stop" ]; do
      i=$((i + 1))
      "$PGBIN/pgbench" -n -c "$clients" -j 2 -T 2 "$db" >"$logdir/run.$i.log" 2>&1 || echo "exit=$?" >>"$logdir/run.$i.log"
    done
  ) &
  LOAD_PID=$!
}

# stop_load LOGDIR: stops the load; fails if any run had failed or aborted
# transactions, or exited non-zero. Prints the totals.
stop_load() {
  local logdir=$1 bad=0 txns failed
  touch "$logdir/stop"
  wait "$LOAD_PID" || true
  txns=$(cat "$logdir"/run.*.log | awk '/number of transactions actually processed/ {s += $NF} END {print s + 0}')
  failed=$(cat "$logdir"/run.*.log | awk '/number of failed transactions/ {s += $5} END {print s + 0}')
  if grep -l -E 'aborted|exit=|ERROR' "$logdir"/run.*.log >/dev/null 2>&1; then
    echo "load: pgbench reported errors:" >&2
    grep -h -E 'aborted|exit=|ERROR' "$logdir"/run.*.log | head -5 >&2
    bad=1
  fi
  [ "$failed" -eq 0 ] || bad=1
  echo "load: $txns pgbench transactions, $failed failed"
  return $bad
}

# tpcb_invariant DB: sum(abalance) = sum(bbalance) = sum(tbalance) = sum(delta)
tpcb_invariant() {
  local db=$1 sums
  sums=$(psql -X -At -d "$db" -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
       (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers)
       || ' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
  echo "TPC-B sums (accounts branches tellers history): $sums"
  [ "$(echo "$sums" | tr ' ' '\n' | sort -u | wc -l)" -eq 1 ]
}
