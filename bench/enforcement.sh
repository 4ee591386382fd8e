#!/usr/bin/env bash
# Overhead of transaction safety: pgbench recording payments (bench/pay.sql)
# with and without motofinai.enforce_consistency(), and with change tracking
# (motofinai.track_changes(): the loans a transaction touched, and the loans
# of the installments its payments name, appended at COMMIT), in one run,
# on a throwaway cluster; prints transactions per second and the ratios.
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

run() { # run LABEL -> "tps payments": fails if pgbench aborted a client
    local loans out
    loans=$(psql -X -At -c "SELECT count(*) FROM bench_loan")
    out=$("$PG_BIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -D loans="$loans" \
          -f "$ROOT/bench/pay.sql" 2>&1)
    if grep -q "aborted" <<<"$out"; then
        echo "pgbench ($1) aborted:" >&2; grep -i "error" <<<"$out" | head -3 >&2; exit 1
    fi
    echo "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out") $(psql -X -At -c "SELECT count(*) FROM payments_payment WHERE reference LIKE 'BENCH-%'")"
}

prepare
read -r base paid_plain <<<"$(run plain)"
errors_before=$(psql -X -At -c "SELECT count(*) FROM check_loan_consistency() WHERE severity = 'error'")
prepare
sql -c "SELECT motofinai.enforce_consistency()" >/dev/null
read -r enforced paid_enforced <<<"$(run enforced)"
errors_after=$(psql -X -At -c "SELECT count(*) FROM check_loan_consistency() WHERE severity = 'error'")
prepare
sql -c "SELECT motofinai.track_changes()" >/dev/null
read -r tracked paid_tracked <<<"$(run tracked)"
noted=$(psql -X -At -c "SELECT count(*) FROM motofinai.changed_loans")
echo "loans=$LOANS clients=$CLIENTS seconds=$SECONDS_PER_RUN"
echo "payment transactions/s without enforcement: $base ($paid_plain payments; errors after: $errors_before)"
echo "payment transactions/s with enforcement:    $enforced ($paid_enforced payments; errors after: $errors_after)"
echo "payment transactions/s with change tracking: $tracked ($paid_tracked payments; $noted loans noted)"
python3 -c "print(f'ratio enforced/plain: {float($enforced)/float($base):.3f}   tracked/plain: {float($tracked)/float($base):.3f}')"
