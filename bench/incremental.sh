#!/usr/bin/env bash
# Incremental checks against the full one, and what the history costs,
# measured in the same run on the same dataset:
#  (a) after CHANGED percent of the loans were changed (through the app's
#      path: tracking triggers on), run_check('changed') against a full
#      system check (check_system_consistency());
#  (b) run_check('system') (the check, the run's row, the history: new,
#      persisting, resolved) against the bare check_system_consistency(), on
#      a dataset whose findings did not change (the changes rewrite values
#      unchanged: every finding persists, the history's largest update);
#      and within that run (track_functions: pg_stat_xact_user_functions),
#      run_check's time against its check_findings' (one statement, so
#      none of the drift between sessions that the first figure carries).
# 9 rounds after a warm-up round (MFC_BENCH_ROUNDS), each: 3 incremental
# runs (MFC_BENCH_INCREMENTALS), each after fresh changes, their median the
# round's; then the bare full check and the recorded full run; medians of
# the per-round ratios. (This machine's speed moves by a fifth over seconds:
# a 0.2 s run caught in a slow phase moved a round's ratio by as much; the
# 4 s full check spans several phases.)
#   bash bench/incremental.sh [loans=100000] [changed_percent=1]
LOANS="${1:-100000}" CHANGED="${2:-1}"
DIR=/tmp/motofinai-bench-incremental PORT=55456
source "$(dirname "$0")/dataset.sh"
make_dataset bench "$LOANS"
DB=bench
sql -d $DB -c "SELECT motofinai.create_check_indexes()" -c "SELECT motofinai.track_changes()" \
    -c "SELECT motofinai.run_check('system')" >/dev/null 2>&1
n=$(( LOANS * CHANGED / 100 )); [ "$n" -lt 1 ] && n=1
# change: change n random loans (a note on each, an installment of every
# tenth), through the tracking triggers.
change() {
    sql -d $DB -c "UPDATE loans_loanapplication SET notes = notes || '.' WHERE id IN
                     (SELECT id FROM loans_loanapplication ORDER BY random() LIMIT $n)" \
        -c "UPDATE loans_paymentschedule SET principal_amount = principal_amount
             WHERE id IN (SELECT id FROM loans_paymentschedule ORDER BY random() LIMIT $((n / 10 + 1)))" >/dev/null
}
# Each round: the incremental runs (each after fresh changes), the bare
# full check and a recorded full run, each in its own session, the ratios
# taken within the round (see rounds in dataset.sh). Round 0 is a warm-up.
: > "$DIR/rounds"
checked=""
# timed SQL: a new session runs SQL; its ms, then its first output line.
timed() {
    local out
    out=$( { echo '\timing on'; echo "$1;"; } | psql -X -q -At -d $DB 2>&1)
    echo "$(timings <<<"$out") $(sed -n '1p' <<<"$out")"
}
for i in $(seq 0 "${MFC_BENCH_ROUNDS:-9}"); do
    runs=()
    for _ in $(seq "${MFC_BENCH_INCREMENTALS:-3}"); do
        change
        read -r ms loans <<<"$(timed "SELECT cardinality(loans) FROM motofinai.run_check('changed')")"
        runs+=("$ms") checked=$loans
    done
    line="$(printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(( (${#runs[@]} + 1) / 2 ))p") "
    line+="$(timed "SELECT count(*) FROM check_system_consistency()" | cut -d' ' -f1) "
    out=$(psql -X -q -At -d $DB 2>&1 <<'SQL'
SET track_functions = 'all';
BEGIN;
\timing on
SELECT id FROM motofinai.run_check('system');
\timing off
SELECT sum(total_time) FILTER (WHERE funcname = 'run_check') || ' ' || sum(total_time) FILTER (WHERE funcname = 'check_findings')
  FROM pg_stat_xact_user_functions WHERE schemaname = 'motofinai';
COMMIT;
SQL
)
    line+="$(timings <<<"$out") $(tail -n 1 <<<"$out")"
    [ "$i" = 0 ] || echo "$line" >> "$DIR/rounds"
done
python3 - "$LOANS" "$CHANGED" "$n" "$checked" "$DIR/rounds" <<'PY'
import statistics, sys
loans, pct, n, checked, path = sys.argv[1:]
rounds = [list(map(float, line.split())) for line in open(path) if line.strip()]
med = lambda xs: statistics.median(xs)
inc, full, rec = (med(r[i] for r in rounds) for i in range(3))
ratio = sorted(r[0] / r[1] * 100 for r in rounds)
cost = sorted((r[2] / r[1] - 1) * 100 for r in rounds)
within = sorted((r[3] / r[4] - 1) * 100 for r in rounds)
print(f"{len(rounds)} rounds (incremental runs after fresh changes, bare full check, recorded full run); medians:")
print(f"(a) {loans} loans, {pct}% changed ({n} loans changed, {checked} checked with the calendar's):")
print(f"    run_check('changed'): {inc:9.1f} ms   full system check: {full:9.1f} ms")
print(f"    incremental / full, within each round: median {med(ratio):.1f}% "
      f"(rounds {', '.join(f'{x:.1f}' for x in ratio)}) (target <= 5%)")
print(f"(b) run_check('system'): {rec:9.1f} ms   history and bookkeeping, within each round: "
      f"median {med(cost):+.1f}% (rounds {', '.join(f'{x:+.1f}' for x in cost)}) (target <= 10%)")
print(f"    within the run (run_check against its check_findings): median {med(within):+.1f}% "
      f"(rounds {', '.join(f'{x:+.1f}' for x in within)})")
PY
