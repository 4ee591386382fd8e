#!/usr/bin/env bash
# Soak: CLIENTS pgbench clients for SECONDS on one cluster, mixing versioned
# read-modify-write increments (40%, retried on 40001), payments under
# motofinai.enforce_consistency() (30%), single-entity checks (29%) and the
# system check (1%). Ends with the figures and three verdicts: no lost
# update (the counters' sum equals the committed increments, counted by the
# server: each increment logs a row in its own transaction; pgbench's own
# count can miss transactions that committed as -T ran out), no server
# process crashed, and the system check has no error-level finding.
#   bash bench/soak.sh [seconds=600] [clients=8] [loans=3000]
source "$(dirname "$0")/../scripts/common.sh"
SECS="${1:-600}" CLIENTS="${2:-8}" LOANS="${3:-3000}"
DIR=/tmp/motofinai-bench-soak PORT=55455

ensure_deps
install_extension --release
cluster_start "$DIR" "$PORT" "shared_preload_libraries = 'motofinai_consistency'" "synchronous_commit = off" \
    "shared_buffers = 1GB" "max_connections = 50"
trap 'cluster_stop "$DIR"' EXIT
export PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

sql -f "$ROOT/tests/fixtures/motofinai_schema.sql" -f "$ROOT/tests/generator/generate.sql" >/dev/null
sql -c "CREATE EXTENSION motofinai_consistency" -c "SELECT motofinai_gen.generate($LOANS)" >/dev/null
sql <<'SQL' >/dev/null
CREATE TABLE soak_counter (id int PRIMARY KEY, val bigint NOT NULL DEFAULT 0);
CREATE TABLE soak_committed (counter int NOT NULL);
INSERT INTO soak_counter (id) SELECT generate_series(1, 16);
SELECT motofinai.enable_versioning('soak_counter');
SELECT motofinai.enable_versioning(t) FROM unnest(ARRAY['loans_loanapplication', 'loans_paymentschedule',
                                                        'payments_payment']::regclass[]) t;
SELECT motofinai.enforce_consistency();
CREATE TABLE soak_loan AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM loans_loanapplication
 WHERE status = 'active' AND id % 7 <> 0;
CREATE INDEX ON soak_loan (n);
VACUUM ANALYZE;
SQL
errors_before=$(psql -X -At -c "SELECT count(*) FROM check_system_consistency() WHERE severity = 'error'")
loans=$(psql -X -At -c "SELECT count(*) FROM soak_loan")
payments=$(psql -X -At -c "SELECT max(id) FROM payments_payment")
echo "soak: $CLIENTS clients for $SECS s on $LOANS loans ($loans payable), $errors_before error findings before"

out=$("$PG_BIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECS" --max-tries=1000 --failures-detailed \
      -D loans="$loans" -D payments="$payments" \
      -f "$ROOT/bench/soak/increment.sql@40" -f "$ROOT/bench/soak/pay.sql@30" \
      -f "$ROOT/bench/soak/check.sql@29" -f "$ROOT/bench/soak/system.sql@1" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E '^(number of|latency average|tps|SQL script| - [0-9]+ transactions| - number of)' | sed 's/^/  /'

increments=$(psql -X -At -c "SELECT count(*) FROM soak_committed")
counted=$(psql -X -At -c "SELECT sum(val) FROM soak_counter")
errors_after=$(psql -X -At -c "SELECT count(*) FROM check_system_consistency() WHERE severity = 'error'")
crashes=$(grep -c 'terminated by signal' "$DIR/server.log" || true)
psql -X -c "SELECT table_name, updates_checked, conflicts FROM motofinai.conflict_stats ORDER BY 1"
echo "committed increments $increments, counters sum $counted, lost updates $((increments - counted))"
echo "server crashes: $crashes; error-level findings after: $errors_after"
[ "$increments" = "$counted" ] && [ "$crashes" = 0 ] && [ "$errors_after" = 0 ]
