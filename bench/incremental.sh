#!/usr/bin/env bash
# Incremental checks against the full one, and what the history costs,
# measured in the same run on the same dataset:
#  (a) after CHANGED percent of the loans were changed (through the app's
#      path: tracking triggers on), run_check('changed') against a full
#      system check (check_system_consistency());
#  (b) run_check('system') (the check, the run's row, the history: new,
#      persisting, resolved) against the bare check_system_consistency(), on
#      an unchanged dataset (every finding persisting: the history's largest
#      update).
# Each timing is the median of 3 runs after a warm-up (time_ms); the changes
# are made afresh before each incremental run.
#   bash bench/incremental.sh [loans=100000] [changed_percent=1]
LOANS="${1:-100000}" CHANGED="${2:-1}"
DIR=/tmp/motofinai-bench-incremental PORT=55456
source "$(dirname "$0")/dataset.sh"
make_dataset bench "$LOANS"
DB=bench
sql -d $DB -c "SELECT motofinai.create_check_indexes()" -c "SELECT motofinai.track_changes()" \
    -c "SELECT motofinai.run_check('system')" >/dev/null 2>&1
n=$(( LOANS * CHANGED / 100 )); [ "$n" -lt 1 ] && n=1
# change_and_check: change n random loans (a note on each, an installment of
# every tenth), then the incremental run; prints the run's loans and time.
change() {
    sql -d $DB -c "UPDATE loans_loanapplication SET notes = notes || '.' WHERE id IN
                     (SELECT id FROM loans_loanapplication ORDER BY random() LIMIT $n)" \
        -c "UPDATE loans_paymentschedule SET principal_amount = principal_amount
             WHERE id IN (SELECT id FROM loans_paymentschedule ORDER BY random() LIMIT $((n / 10 + 1)))" >/dev/null
}
incremental=()
checked=0
for i in 0 1 2 3; do
    change
    out=$( { echo '\timing on'; echo "SELECT cardinality(loans) FROM motofinai.run_check('changed');"; } \
           | psql -X -q -At -d $DB 2>&1)
    [ "$i" = 0 ] && continue   # warm-up
    checked=$(sed -n '1p' <<<"$out")
    incremental+=("$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out")")
done
inc=$(printf '%s\n' "${incremental[@]}" | sort -n | sed -n 2p)
full=$(time_ms $DB "SELECT count(*) FROM check_system_consistency()")
bare=$full
recorded=$(time_ms $DB "SELECT id FROM motofinai.run_check('system')")
python3 - "$LOANS" "$CHANGED" "$n" "$checked" "$inc" "$full" "$bare" "$recorded" <<'PY'
import sys
loans, pct, n, checked, inc, full, bare, rec = sys.argv[1:]
inc, full, bare, rec = map(float, (inc, full, bare, rec))
print(f"(a) {loans} loans, {pct}% changed ({n} loans changed, {checked} checked with the calendar's):")
print(f"    run_check('changed'): {inc:9.1f} ms   full system check: {full:9.1f} ms   "
      f"incremental / full: {inc / full * 100:.1f}% (target <= 5%)")
print(f"(b) run_check('system'): {rec:9.1f} ms   bare check: {bare:9.1f} ms   "
      f"history and bookkeeping: +{(rec / bare - 1) * 100:.1f}% (target <= 10%)")
PY
