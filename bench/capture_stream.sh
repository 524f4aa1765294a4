#!/usr/bin/env bash
# Captures the decoder benchmark input, bench/data/events_stream.hex, from a
# real throwaway PostgreSQL cluster (scripts/pgcluster.sh, always stopped).
#
# Usage: bench/capture_stream.sh [TRANSACTIONS] [OUTPUT]
#   TRANSACTIONS  number of source transactions (default 15000, ~50k messages)
#   OUTPUT        default bench/data/events_stream.hex
#
# Workload: an append-mostly events table (id bigserial PK, created_at
# timestamptz, tenant_id int, type text, payload jsonb of ~200 bytes) written
# by many small transactions: 70 % of them run one statement, 20 % two, 10 %
# three to five; statements are 80 % single-row INSERTs, 12 % UPDATEs of a
# recent row's type and payload, 8 % DELETEs of a recent row. The stream is
# read with the SQL interface, exactly like scripts/capture_fixtures.sh:
#   pg_logical_slot_peek_binary_changes(slot, NULL, NULL, 'proto_version', '3',
#       'publication_names', 'p', 'messages', 'true')
# and written one pgoutput message per line as hex, after '#' comment lines.
# No streaming and no two-phase, so every message decodes with
# CodecContext{proto_version = 3, in_stream_block = false}.
#
# Run by hand (not by the test suite); commit the regenerated file.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TXNS=${1:-15000}
OUT=${2:-$ROOT/bench/data/events_stream.hex}
mkdir -p "$(dirname "$OUT")"

STATE=$(mktemp -d /tmp/pgshift-bench-capture.XXXXXX)
cleanup() {
    "$ROOT/scripts/pgcluster.sh" stop "$STATE" >/dev/null 2>&1 || true
    rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

"$ROOT/scripts/pgcluster.sh" start "$STATE" >/dev/null
# shellcheck disable=SC1091
. "$STATE/env"
export PGOPTIONS="-c client_min_messages=warning"
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "CREATE DATABASE bench"
export PGDATABASE=bench
SERVER_VERSION=$("${PSQL[@]}" -At -c "SHOW server_version")

"${PSQL[@]}" <<'SQL'
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL,
    tenant_id int NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL
);
CREATE PUBLICATION p FOR TABLE events;

-- One event's payload: ~200 bytes of jsonb text output.
CREATE FUNCTION event_payload(seq bigint) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'user_id', 100000 + floor(random() * 900000)::int,
        'session', md5(seq::text || random()::text),
        'ip', format('10.%s.%s.%s', floor(random() * 256)::int, floor(random() * 256)::int,
                     floor(random() * 256)::int),
        'path', (ARRAY['/', '/cart', '/checkout', '/search', '/product/view'])[1 + floor(random() * 5)::int],
        'amount', round((random() * 500)::numeric, 2),
        'ok', random() < 0.95,
        'ref', 'https://example.com/c/' || substr(md5(random()::text), 1, 10),
        'tags', jsonb_build_array('web', (ARRAY['eu', 'us', 'apac'])[1 + floor(random() * 3)::int]))
$$;

-- Many small transactions (COMMIT inside a procedure ends each one).
CREATE PROCEDURE workload(ntx int) LANGUAGE plpgsql AS $$
DECLARE
    nstmt int;
    r float8;
    maxid bigint := 0;
    newid bigint;
    types text[] := ARRAY['page_view', 'click', 'add_to_cart', 'purchase', 'signup', 'logout'];
BEGIN
    PERFORM setseed(0.42);
    FOR t IN 1..ntx LOOP
        r := random();
        nstmt := CASE WHEN r < 0.7 THEN 1 WHEN r < 0.9 THEN 2 ELSE 3 + floor(random() * 3)::int END;
        FOR s IN 1..nstmt LOOP
            r := random();
            IF r < 0.8 OR maxid < 100 THEN
                INSERT INTO events (created_at, tenant_id, type, payload)
                VALUES (clock_timestamp(), 1 + floor(random() * 500)::int,
                        types[1 + floor(random() * 6)::int], event_payload(maxid + 1))
                RETURNING id INTO newid;
                maxid := newid;
            ELSIF r < 0.92 THEN
                UPDATE events SET type = types[1 + floor(random() * 6)::int],
                                  payload = event_payload(id)
                 WHERE id = maxid - floor(random() * 100)::int;
            ELSE
                DELETE FROM events WHERE id = maxid - floor(random() * 100)::int;
            END IF;
        END LOOP;
        COMMIT;
    END LOOP;
END
$$;
SELECT 1 FROM pg_create_logical_replication_slot('bench', 'pgoutput');
SQL

"${PSQL[@]}" -c "CALL workload($TXNS)"

OPTS="'proto_version', '3', 'publication_names', 'p', 'messages', 'true'"
{
    echo "# PostgreSQL $SERVER_VERSION, pgoutput options: $OPTS"
    echo "# bench/capture_stream.sh $TXNS: events table, small transactions (80% INSERT, 12% UPDATE, 8% DELETE); one message per line, hex"
    "${PSQL[@]}" -At -c \
        "SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('bench', NULL, NULL, $OPTS)"
} >"$OUT"
"${PSQL[@]}" -At -c "SELECT pg_drop_replication_slot('bench')" >/dev/null

echo "wrote $OUT: $(grep -vc '^#' "$OUT") messages, $(du -h "$OUT" | cut -f1)"
grep -v '^#' "$OUT" | cut -c1-2 | sort | uniq -c | awk '{printf "  type 0x%s: %s\n", $2, $1}'
