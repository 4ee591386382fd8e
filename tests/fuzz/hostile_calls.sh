#!/usr/bin/env bash
# Hostile calls to every function of the extension (its members in schema
# motofinai and the public wrappers, from pg_depend), in a throwaway database
# with the Motofinai tables, generated data with one injection of every
# defect, and relations of every awkward kind (views, partitioned, foreign,
# temporary, keyless, system catalogs, hostile names; see hostile_setup.sql).
# Each argument runs through a pool of values of its type (NULLs, negative,
# zero and huge ids, ids of the wrong table, hostile text, huge and deeply
# nested jsonb) with the others at a sensible baseline, as superuser and as a
# role without privileges; then RANDOM_CALLS random combinations per function;
# then the trigger functions misused in every timing, level and event.
# Every call runs in its own statement and a subtransaction that is rolled
# back, with a timeout (CALL_TIMEOUT), and its SQLSTATE is recorded.
# Fails on: a lost connection or a crash in the server log, an XX (internal),
# 58 (system) or P0001 (unspecified) error or a Rust panic, a call whose
# result was not recorded. Every call and its SQLSTATE: $HOSTILE_CSV.
# Connection from PGHOST/PGPORT/PGUSER (superuser); SERVER_LOG names the
# server log if it is not found by itself.
source "$(dirname "$0")/../lib.sh"
DB=mfc_fuzz
RANDOM_CALLS="${RANDOM_CALLS:-200}"
CALL_TIMEOUT="${CALL_TIMEOUT:-10s}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

fresh_db $DB
load_motofinai $DB 100
q -d $DB -c "SELECT motofinai_gen.inject(1)" >/dev/null
q -d $DB -v host="${PGHOST:-/var/run/postgresql}" -v port="${PGPORT:-5432}" -v db=$DB \
  -f "$TESTS/fuzz/hostile_setup.sql" >/dev/null
val -d $DB -c "SELECT fuzz.generate($RANDOM_CALLS), fuzz.generate_triggers()" >/dev/null
# EXTRA_CALL: one more call of your own, e.g. to see that a crash is caught.
[ -z "${EXTRA_CALL:-}" ] || q -d $DB -c "INSERT INTO fuzz.calls (fn, role, sql) VALUES ('extra', 'postgres', \$x\$$EXTRA_CALL\$x\$)"
n=$(val -d $DB -c "SELECT max(id) FROM fuzz.calls")
functions=$(val -d $DB -c "SELECT count(*) FROM fuzz.functions")
echo "$n calls to $functions functions"
log_from=$(log_size)

# One session runs the remaining calls, one statement each; if it dies, the
# call after the last recorded one killed it: record it and go on after it.
next=1 lost=0
while :; do
    { echo "SET statement_timeout = '$CALL_TIMEOUT';"
      echo "CREATE TEMP TABLE fuzz_temp (id int PRIMARY KEY, v int); INSERT INTO fuzz_temp VALUES (1, 0);"
      seq "$next" "$n" | sed 's/.*/SELECT fuzz.run(&);/'; } |
        psql -X -q -d $DB -o /dev/null 2>>"$tmp/session.err" && break
    for _ in $(seq 1 60); do psql -X -q -d $DB -c "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
    last=$(val -d $DB -c "SELECT coalesce(max(id), 0) FROM fuzz.results")
    [ "$last" -lt "$n" ] || break
    lost=$((lost + 1))
    q -d $DB -c "INSERT INTO fuzz.results VALUES ($last + 1, 'LOST', 'connection lost during this call')"
    next=$((last + 2))
done

val -d $DB -F ' ' <<'SQL' >"$tmp/summary"
SELECT 'calls', count(*), 'ok', count(*) FILTER (WHERE r.sqlstate = 'ok'),
       'errors', count(*) FILTER (WHERE r.sqlstate <> 'ok'), 'unrecorded', count(*) FILTER (WHERE r.id IS NULL)
  FROM fuzz.calls c LEFT JOIN fuzz.results r USING (id);
SELECT 'errors by class:', string_agg(format('%s=%s', cls, n), ' ' ORDER BY cls)
  FROM (SELECT left(sqlstate, 2) AS cls, count(*) AS n FROM fuzz.results WHERE sqlstate <> 'ok' GROUP BY 1) x;
SELECT 'ok for a role without privileges:', string_agg(format('%s=%s', fn, n), ' ' ORDER BY fn)
  FROM (SELECT fn, count(*) AS n FROM fuzz.calls JOIN fuzz.results USING (id)
         WHERE role = 'fuzz_nobody' AND sqlstate = 'ok' GROUP BY 1) x;
SELECT 'errors by SQLSTATE:', string_agg(format('%s=%s', sqlstate, n), ' ' ORDER BY n DESC, sqlstate)
  FROM (SELECT sqlstate, count(*) AS n FROM fuzz.results WHERE sqlstate <> 'ok' GROUP BY 1) x;
SQL
cat "$tmp/summary"
# The calls that must not happen, and the ones worth a look.
val -d $DB -F ' | ' >"$tmp/bad" <<'SQL'
SELECT r.sqlstate, c.role, left(c.sql, 200), r.message FROM fuzz.calls c JOIN fuzz.results r USING (id)
 WHERE r.sqlstate ~ '^(XX|58|P0001|LOST)' OR r.message ~* 'panick' ORDER BY c.id;
SQL
val -d $DB -F ' | ' >"$tmp/slow" -c "SELECT ms, left(sql, 150) FROM fuzz.calls JOIN fuzz.results USING (id) ORDER BY ms DESC NULLS LAST LIMIT 3"
echo "slowest calls (ms):"; sed 's/^/    /' "$tmp/slow"
if [ -s "$tmp/bad" ]; then
    fail "$(wc -l <"$tmp/bad") internal errors, panics or lost connections (first 30):"
    head -30 "$tmp/bad" | sed 's/^/    /'
else
    pass "no internal error, panic or lost connection"
fi
crashes=$(crashes_since "$log_from")
if [ -n "$crashes" ]; then fail "crash in the server log:"; echo "$crashes" | head -5; else pass "no crash in the server log"; fi
expect_eq "every call has a result" "$(awk '$1 == "calls" {print $8}' "$tmp/summary")" 0
psql -X -q -d $DB -c "\\copy (SELECT c.id, c.fn, c.role, c.sql, r.sqlstate, r.message FROM fuzz.calls c LEFT JOIN fuzz.results r USING (id) ORDER BY c.id) TO '${HOSTILE_CSV:-/tmp/mfc-hostile-calls.csv}' CSV HEADER"
[ "${KEEP_DB:-0}" = 1 ] || { drop_db $DB; q -d postgres -c "DROP ROLE fuzz_nobody"; }
summary hostile_calls "$(head -1 "$tmp/summary"), $((SECONDS - start)) s"
