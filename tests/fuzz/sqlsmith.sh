#!/usr/bin/env bash
# sqlsmith against a throwaway database with the extension, the Motofinai
# tables, generate(200) with one injection of every defect, versioning on the
# loan and payment tables and enforcement on: random queries (sqlsmith rolls
# each one back) for SQLSMITH_SECONDS (default 60) or SQLSMITH_QUERIES,
# whichever ends first, with seed SQLSMITH_SEED (default: the date).
# Prints the queries run, ok and failed, how many named our objects, the
# error messages that look like ours, and every server crash with its query,
# and whether it names the extension's objects or a versioned table. Fails on
# any server crash (sqlsmith's own crash is reported, not failed).
# Installs the Debian package sqlsmith if missing (as root).
# Connection from PGHOST/PGPORT/PGUSER (superuser); SERVER_LOG names the
# server log if it is not found by itself. Logs in $SQLSMITH_DIR.
source "$(dirname "$0")/../lib.sh"
DB=mfc_sqlsmith
SECONDS_MAX="${SQLSMITH_SECONDS:-60}"
QUERIES_MAX="${SQLSMITH_QUERIES:-1000000}"
SEED="${SQLSMITH_SEED:-$(date +%Y%m%d)}"
OUT="${SQLSMITH_DIR:-/tmp/mfc-sqlsmith}"
CALLS_OURS='(motofinai\.[a-z_]+|consistency_report|check_[a-z]+_consistency)\('
WRITES_VERSIONED='(update|insert into|delete from|merge into) +(public\.)?(loans_loanapplication|payments_payment|loans_paymentschedule)'
OURS="motofinai|consistency|loans_loanapplication|payments_payment|loans_paymentschedule"

if ! command -v sqlsmith >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlsmith >/dev/null
fi
mkdir -p "$OUT"
fresh_db $DB
load_motofinai $DB 200
q -d $DB >/dev/null <<SQL
SELECT motofinai_gen.inject(1);
SELECT motofinai.enable_versioning('loans_loanapplication');
SELECT motofinai.enable_versioning('payments_payment', protocol => 'increment', strict => true);
SELECT motofinai.enforce_consistency();
-- sqlsmith's thousands of failing queries would flood the server log.
ALTER DATABASE $DB SET log_min_messages = fatal;
SQL
log_from=$(log_size)

# sqlsmith prints one character per query on stderr (. ok, e error, t timeout,
# S syntax, C connection lost) and, on SIGINT, its report; the queries
# themselves (--dump-all-queries) are only counted.
set +e
timeout -s INT "$SECONDS_MAX" sqlsmith --target="host=${PGHOST:-/var/run/postgresql} port=${PGPORT:-5432} user=$PGUSER dbname=$DB" \
    --seed="$SEED" --max-queries="$QUERIES_MAX" --exclude-catalog --verbose --dump-all-queries 2>"$OUT/sqlsmith.err" |
    awk -v RS=';\n' -v c="$CALLS_OURS" -v w="$WRITES_VERSIONED" \
        '$0 ~ c {calls++} $0 ~ w {writes++} END {printf "%d call our functions, %d write a versioned or enforced table", calls, writes}' \
        >"$OUT/ours.count"
rc=${PIPESTATUS[0]}
set -e
queries=$(sed -n 's/^queries: \([0-9]*\).*/\1/p' "$OUT/sqlsmith.err" | tail -1)
marks=$(grep -E '^[.etSC]+$' "$OUT/sqlsmith.err" | tr -d '\n')
count() { tr -cd "$1" <<<"$marks" | wc -c; }
echo "sqlsmith (seed $SEED, ${SECONDS_MAX}s, rc $rc): ${queries:-0} queries, $(count .) ok, $(count e) errors," \
     "$(count t) timeouts, $(count S) syntax errors, $(count C) connections lost;" \
     "$(cat "$OUT/ours.count")"
echo "error rate: $(sed -n 's/^error rate: //p' "$OUT/sqlsmith.err" | tail -1)"
ours=$(tac "$OUT/sqlsmith.err" | awk '/^error rate/ {f = 1; next} f && /^[0-9]+\t/ {print} f && !/^[0-9]+\t/ {exit}' |
       grep -Ei 'motofinai|\<version|scope|consisten|panick' || true)
echo "errors that look like ours (count, message):"
sed 's/^/    /' <<<"${ours:-none}"
case $rc in 0|124|130) ;; *) echo "WARNING: sqlsmith itself exited with status $rc (not a server crash)";; esac

# Crashes: the postmaster logs the crashed process's query (continuation lines start with a tab).
f=$(server_log)
if [ -n "$f" ] && [ -r "$f" ]; then
    tail -c +"$((log_from + 1))" "$f" | awk '/terminated by signal|was terminated/ {print; f = 1; next}
        f && /Failed process was running/ {print; g = 1; next} g && /^\t/ {print; next} {f = 0; g = 0}' >"$OUT/crashes"
    if [ -s "$OUT/crashes" ]; then
        if grep -qE "$OURS" "$OUT/crashes"; then fail "server crash; the query names the extension's objects:"
        else fail "server crash; the query names none of the extension's objects (a core bug, or our callbacks):"; fi
        cat "$OUT/crashes"
    else
        pass "no server crash in $f"
    fi
else
    echo "(server log not readable: set SERVER_LOG)"
fi
[ "$(count C)" = 0 ] || [ -s "$OUT/crashes" ] || fail "$(count C) connections lost without a crash in the log"
drop_db $DB
summary sqlsmith "${queries:-0} queries, $(count e) errors, $(count C) connections lost"
