# Shared by the check benchmarks: a throwaway cluster, generated Motofinai
# datasets, and timing. Source it after setting DIR and PORT.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

ensure_deps
install_extension --release
# Huge pages for the 4 GB of shared buffers, as PostgreSQL advises for a
# buffer pool of gigabytes: a new session maps each buffer page it touches,
# and with 4 kB pages that is a page fault per 4 kB (an incremental run at
# 100,000 loans touches about 300 MB of buffers: 40-60 ms of its 200 ms on
# this VM). Reserved here where we may (root), given back on exit; else
# PostgreSQL's default, huge_pages = try. MFC_BENCH_HUGE_PAGES=0: 4 kB pages.
HUGE=off HUGE_BEFORE=""
if [ "${MFC_BENCH_HUGE_PAGES:-1}" = 1 ]; then
    HUGE=try
    if [ -w /proc/sys/vm/nr_hugepages ]; then
        HUGE_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
        echo $((HUGE_BEFORE + 2200)) > /proc/sys/vm/nr_hugepages
        [ "$(cat /proc/sys/vm/nr_hugepages)" -ge $((HUGE_BEFORE + 2200)) ] && HUGE=on
    fi
fi
give_back_pages() { [ -z "$HUGE_BEFORE" ] || echo "$HUGE_BEFORE" > /proc/sys/vm/nr_hugepages; }
trap 'cluster_stop "$DIR"; give_back_pages' EXIT
cluster_start "$DIR" "$PORT" "shared_buffers = 4GB" "work_mem = 64MB" "max_wal_size = 8GB" "autovacuum = off" \
    "huge_pages = $HUGE"
echo "huge_pages = $HUGE"
export PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# make_dataset DB LOANS: the generator's data with 5 injections of every
# defect (1 below 10,000 loans), vacuumed and analyzed (index-only scans and
# good estimates).
make_dataset() {
    sql -d postgres -c "CREATE DATABASE $1" >/dev/null
    sql -d "$1" -f "$ROOT/tests/fixtures/motofinai_schema.sql" -f "$ROOT/tests/generator/generate.sql" >/dev/null
    sql -d "$1" -c "CREATE EXTENSION motofinai_consistency" -c "SELECT motofinai_gen.generate($2)" \
        -c "SELECT motofinai_gen.inject(CASE WHEN $2 >= 10000 THEN 5 ELSE 1 END)" -c "VACUUM ANALYZE" >/dev/null
    sql -d "$1" -At -c "SELECT format('dataset %s: %s loans, %s installments, %s payments', current_database(),
        (SELECT count(*) FROM loans_loanapplication), (SELECT count(*) FROM loans_paymentschedule),
        (SELECT count(*) FROM payments_payment))"
}

# timings: the ms of each statement psql timed (\timing on), a line each.
timings() {
    sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}

# time_ms DB SQL: median ms of 3 runs after one warm-up, in one session.
time_ms() {
    { echo "$2;"; echo '\timing on'; for _ in 1 2 3; do echo "$2;"; done; } \
        | psql -X -q -d "$1" 2>&1 | timings | sort -n | sed -n 2p
}

# rounds DB N SQL...: after a warm-up round, N rounds that each run every
# statement once, in order, in one session; a line per round with each
# statement's ms. A ratio taken within a round compares statements run
# seconds apart: this machine's speed drifts by 10-25% over minutes, which
# medians taken one statement after another turn into a ratio's error.
rounds() {
    local db=$1 n=$2 r q
    shift 2
    for r in $(seq 0 "$n"); do
        { echo '\timing on'; for q in "$@"; do echo "$q;"; done; } | psql -X -q -d "$db" 2>&1 | timings | paste -sd' '
    done | tail -n "$n"
}

# The floor: installments and payments summed per loan, joined to the loans.
FLOOR_SQL="SELECT count(*), sum(s.owed), sum(p.paid) FROM loans_loanapplication l
  LEFT JOIN (SELECT loan_application_id, sum(total_amount) AS owed FROM loans_paymentschedule GROUP BY 1) s
         ON s.loan_application_id = l.id
  LEFT JOIN (SELECT loan_application_id, sum(amount) AS paid FROM payments_payment GROUP BY 1) p
         ON p.loan_application_id = l.id"
