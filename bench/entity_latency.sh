#!/usr/bin/env bash
# Latency of the single-entity checks over random ids of the generated
# dataset: pgbench, one client, each call logged; median and p99 for
# check_loan_consistency(id), check_payment_consistency(id) and
# check_inventory_consistency(id), against a primary-key lookup of the same
# table measured in the same run.
#   bash bench/entity_latency.sh [loans=100000] [calls=5000]
LOANS="${1:-100000}" CALLS="${2:-5000}"
DIR=/tmp/motofinai-bench-entity PORT=55454
source "$(dirname "$0")/dataset.sh"
make_dataset bench "$LOANS"
# The index the single-payment check's duplicate-reference rule needs (README).
sql -d bench -c "SELECT motofinai.create_check_indexes()" -c "ANALYZE payments_payment" >/dev/null

# latencies NAME TABLE SQL: "median p99" in ms over CALLS random ids of TABLE.
latencies() {
    local max logdir="$DIR/log_$1"
    max=$(psql -X -At -d bench -c "SELECT max(id) FROM $2")
    mkdir -p "$logdir" && chown postgres: "$logdir" 2>/dev/null || true
    printf '\\set id random(1, %s)\n%s\n' "$max" "$3" > "$logdir/script.sql"
    (cd "$logdir" && "$PG_BIN/pgbench" -n -d bench -c 1 -t "$CALLS" -f script.sql -l --log-prefix=lat >/dev/null 2>&1)
    # Log lines: client transaction latency_us script epoch us.
    cat "$logdir"/lat* | awk '{print $3 / 1000}' | sort -n \
        | awk '{a[NR]=$1} END {printf "%.3f %.3f\n", a[int((NR+1)/2)], a[int(NR*0.99)]}'
    rm -rf "$logdir"
}

echo "$CALLS calls each, one client, random ids (ms)"
printf '%-42s %8s %8s %10s\n' "" median p99 "vs lookup"
for spec in "loan loans_loanapplication check_loan_consistency" \
            "payment payments_payment check_payment_consistency" \
            "motor inventory_motor check_inventory_consistency"; do
    read -r name table fn <<<"$spec"
    read -r lm lp < <(latencies "${name}_lookup" "$table" "SELECT * FROM $table WHERE id = :id;")
    read -r cm cp < <(latencies "$name" "$table" "SELECT * FROM $fn(:id);")
    printf '%-42s %8s %8s\n' "$table primary-key lookup" "$lm" "$lp"
    printf '%-42s %8s %8s %9.1fx\n' "$fn(id)" "$cm" "$cp" "$(python3 -c "print($cm / $lm)")"
done
