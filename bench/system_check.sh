#!/usr/bin/env bash
# The full system check at scale, against baselines measured in the same run:
#  (a) a plain aggregate scan: installments and payments summed per loan
#      and joined to the loans (the floor);
#  (b) the seed's approach: the single-loan check once per loan, run on a
#      random sample and scaled up to all loans (said so in the output).
# Also the quick check. Each timing is the median of 3 runs.
#   bash bench/system_check.sh [loans=100000] [sample=2000]
source "$(dirname "$0")/../scripts/common.sh"
LOANS="${1:-100000}" SAMPLE="${2:-2000}"
DIR=/tmp/motofinai-bench-system PORT=55452

ensure_deps
install_extension --release
cluster_start "$DIR" "$PORT" "shared_buffers = 4GB" "work_mem = 64MB" "max_wal_size = 8GB" "autovacuum = off"
trap 'cluster_stop "$DIR"' EXIT
export PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

sql -f "$ROOT/tests/fixtures/motofinai_schema.sql" -f "$ROOT/tests/generator/generate.sql" >/dev/null
sql -c "CREATE EXTENSION motofinai_consistency" -c "SELECT motofinai_gen.generate($LOANS)" \
    -c "SELECT motofinai_gen.inject(5)" -c "VACUUM ANALYZE" >/dev/null
sql -At -c "SELECT format('dataset: %s loans, %s installments, %s payments',
    (SELECT count(*) FROM loans_loanapplication), (SELECT count(*) FROM loans_paymentschedule),
    (SELECT count(*) FROM payments_payment))"

time_ms() { # time_ms SQL -> median ms of 3 runs (after one warm-up)
    local runs=()
    psql -X -q -c "$1" >/dev/null
    for _ in 1 2 3; do
        runs+=("$( { echo '\timing on'; echo "$1"; } | psql -X -q 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)")
    done
    printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p
}

floor=$(time_ms "SELECT count(*), sum(s.owed), sum(p.paid) FROM loans_loanapplication l
  LEFT JOIN (SELECT loan_application_id, sum(total_amount) AS owed FROM loans_paymentschedule GROUP BY 1) s
         ON s.loan_application_id = l.id
  LEFT JOIN (SELECT loan_application_id, sum(amount) AS paid FROM payments_payment GROUP BY 1) p
         ON p.loan_application_id = l.id")
system=$(time_ms "SELECT count(*) FROM check_system_consistency()")
quick=$(time_ms "SELECT count(*) FROM check_quick_consistency()")
sample=$(time_ms "SELECT count(*) FROM (SELECT id FROM loans_loanapplication ORDER BY md5(id::text) LIMIT $SAMPLE) l,
                  check_loan_consistency(l.id) f")
python3 - "$floor" "$system" "$quick" "$sample" "$LOANS" "$SAMPLE" <<'PY'
import sys
floor, system, quick, sample, loans, n = map(float, sys.argv[1:])
per_loan = sample / n
print(f"(a) plain aggregate scan (floor):      {floor:9.1f} ms")
print(f"    check_system_consistency():        {system:9.1f} ms   = {system/floor:.2f}x the floor (target <= 2x)")
print(f"(b) single-loan check per loan:        {per_loan:9.3f} ms per loan, measured on {int(n)} loans,")
print(f"    scaled to {int(loans)} loans:          {per_loan*loans:9.1f} ms   system check is {per_loan*loans/system:.0f}x faster (target >= 100x)")
print(f"    check_quick_consistency():         {quick:9.1f} ms   (target < 1000 ms)")
PY
