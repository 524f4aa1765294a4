#!/usr/bin/env bash
# `abort` during sync stops the running job and leaves nothing behind: no
# slot, publication, origin or shadow, and the source keeps its relfilenode
# and rows.
. "$(dirname "$0")/lib.sh"

sql <<'SQL'
CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, payload jsonb);
INSERT INTO events (created_at, payload)
  SELECT timestamptz '2025-01-01' + i * interval '10 minutes', jsonb_build_object('i', i)
  FROM generate_series(1, 20000) i;
SQL
write_job "$WORK/job.ini" events created_at "1 month" "[cutover]" "mode = manual"
before_node=$(q "SELECT relfilenode FROM pg_class WHERE relname = 'events'")

"$PGSHIFT_BIN" run -c "$WORK/job.ini" >"$WORK/run.out" 2>&1 &
run_pid=$!
wait_for phase_is events sync || { cat "$WORK/run.out"; fail "job never reached sync"; }
sql -c "INSERT INTO events (created_at, payload) VALUES (now(), '{}')"
"$PGSHIFT_BIN" status -c "$WORK/job.ini" --json >"$WORK/status.json"
assert_eq "$(q "SELECT \$j\$$(cat "$WORK/status.json")\$j\$::jsonb ->> 'phase'")" sync "status phase"
before_sum=$(q "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM events t")

"$PGSHIFT_BIN" abort -c "$WORK/job.ini"
set +e
wait "$run_pid"; run_rc=$?
set -e
[ "$run_rc" -ne 0 ] || fail "the aborted run exited 0"
assert_no_job_objects
assert_eq "$(q "SELECT relfilenode FROM pg_class WHERE relname = 'events'")" "$before_node" "relfilenode"
assert_eq "$(q "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM events t")" "$before_sum" "rows"
assert_eq "$(q "SELECT relkind FROM pg_class WHERE relname = 'events'")" r "source still a plain table"
assert_eq "$(job_phase events)" aborted "job phase"
