#!/usr/bin/env bash
# Overhead of transaction safety: pgbench recording payments (bench/pay.sql)
# with and without motofinai.enforce_consistency(), in one run, on a
# throwaway cluster; prints transactions per second and the ratio.
#   bash bench/enforcement.sh [loans=10000] [seconds=20] [clients=2]
source "$(dirname "$0")/../scripts/common.sh"
LOANS="${1:-10000}" SECONDS_PER_RUN="${2:-20}" CLIENTS="${3:-2}"
DIR=/tmp/motofinai-bench PORT=55450

ensure_deps
install_extension --release
cluster_start "$DIR" "$PORT" "synchronous_commit = off" "shared_buffers = 1GB"
trap 'cluster_stop "$DIR"' EXIT
export PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

prepare() {
    sql -c "DROP SCHEMA IF EXISTS motofinai_gen CASCADE" -c "DROP EXTENSION IF EXISTS motofinai_consistency CASCADE" \
        -c "DROP TABLE IF EXISTS bench_loan" >/dev/null
    sql -c "DROP SCHEMA public CASCADE" -c "CREATE SCHEMA public" >/dev/null
    sql -f "$ROOT/tests/fixtures/motofinai_schema.sql" -f "$ROOT/tests/generator/generate.sql" >/dev/null
    sql -c "CREATE EXTENSION motofinai_consistency" -c "SELECT motofinai_gen.generate($LOANS)" >/dev/null
    # Active, not delinquent loans with installments still to pay.
    sql -c "CREATE TABLE bench_loan AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM loans_loanapplication
            WHERE status = 'active' AND id % 7 <> 0" -c "CREATE INDEX ON bench_loan (n)" -c "VACUUM ANALYZE" >/dev/null
}

run() { # run LABEL -> tps
    local loans tps
    loans=$(psql -X -At -c "SELECT count(*) FROM bench_loan")
    tps=$("$PG_BIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -D loans="$loans" \
          -f "$ROOT/bench/pay.sql" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
    echo "$tps"
}

prepare
base=$(run plain)
errors_before=$(psql -X -At -c "SELECT count(*) FROM check_loan_consistency() WHERE severity = 'error'")
prepare
sql -c "SELECT motofinai.enforce_consistency()" >/dev/null
enforced=$(run enforced)
errors_after=$(psql -X -At -c "SELECT count(*) FROM check_loan_consistency() WHERE severity = 'error'")
echo "loans=$LOANS clients=$CLIENTS seconds=$SECONDS_PER_RUN"
echo "payment transactions/s without enforcement: $base (errors after: $errors_before)"
echo "payment transactions/s with enforcement:    $enforced (errors after: $errors_after)"
python3 -c "print(f'ratio enforced/plain: {float($enforced)/float($base):.3f}')"
