#!/usr/bin/env bash
# The checks on a streaming-replication hot standby. Starts its own primary
# (preloading the extension) on $STANDBY_PORT (default 55490) and a hot
# standby made with pg_basebackup -R on the next port, both under
# $STANDBY_DIR (default /tmp/mfc-standby). Loads the Motofinai tables,
# generate(300), inject(2) and versioning on the primary, waits for replay,
# then asserts that every check gives the standby the primary's answer,
# that functions which write fail cleanly there with 25006
# (read_only_sql_transaction), and that no server process crashed.
# Run as root (the clusters run as postgres) or as postgres.
source "$(dirname "$0")/../../scripts/common.sh"
source "$(dirname "$0")/../lib.sh"
DIR="${STANDBY_DIR:-/tmp/mfc-standby}"
PORT="${STANDBY_PORT:-55490}"
DB=motofinai
primary() { PGHOST="$DIR/primary" PGPORT=$PORT "$@"; }
standby() { PGHOST="$DIR/standby" PGPORT=$((PORT + 1)) "$@"; }
trap 'cluster_stop "$DIR/standby"; cluster_stop "$DIR/primary"' EXIT

cluster_stop "$DIR/standby"
cluster_start "$DIR/primary" "$PORT" "shared_preload_libraries = 'motofinai_consistency'" "wal_level = replica"
as_root rm -rf "$DIR/standby"
as_root install -d -o postgres "$DIR/standby"
as_pg "$PG_BIN/pg_basebackup" -h "$DIR/primary" -p "$PORT" -U postgres -D "$DIR/standby/data" -R -X stream
printf "port = %s\nunix_socket_directories = '%s'\nhot_standby = on\n" $((PORT + 1)) "$DIR/standby" \
    | as_pg tee -a "$DIR/standby/data/postgresql.conf" >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$DIR/standby/data" -l "$DIR/standby/server.log" -w start >/dev/null
expect_eq "the standby is in recovery" "$(standby val -d postgres -c "SELECT pg_is_in_recovery()")" t

primary fresh_db $DB
primary load_motofinai $DB 300
primary q -d $DB >/dev/null <<'SQL'
SELECT motofinai_gen.inject(2);
SELECT motofinai.enable_versioning('loans_loanapplication');
SELECT motofinai.enable_versioning('payments_payment', protocol => 'increment', strict => true);
UPDATE loans_loanapplication SET notes = 'seen' WHERE id % 5 = 0;
SELECT motofinai.run_check('system');
SQL
lsn=$(primary val -d $DB -c "SELECT pg_current_wal_lsn()")
for _ in $(seq 1 120); do
    [ "$(standby val -d postgres -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break
    sleep 0.5
done
expect_eq "the standby replayed the load" "$(standby val -d postgres -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" t

# The same questions to both servers, sorted where the order is not part of the answer.
ids=$(primary val -d $DB -c "SELECT string_agg(id::text, ',') FROM (SELECT DISTINCT entity_id AS id FROM motofinai_gen.expected
                               WHERE entity = 'loan' ORDER BY 1 LIMIT 12) x")
pay=$(primary val -d $DB -c "SELECT min(entity_id) FROM motofinai_gen.expected WHERE entity = 'payment'")
motor=$(primary val -d $DB -c "SELECT min(entity_id) FROM motofinai_gen.expected WHERE entity = 'motor'")
questions() {
    val -d $DB <<SQL
SELECT 'system', * FROM check_system_consistency() ORDER BY 2, 3, 4, 5, 6, 7::text;
SELECT 'quick', * FROM check_quick_consistency() ORDER BY 2, 3, 4, 5, 6, 7::text;
SELECT 'loans', l, c.* FROM unnest('{$ids,999999999}'::bigint[]) l, check_loan_consistency(l) c ORDER BY 2, 3, 4, 5, 6, 7;
SELECT 'payment', * FROM check_payment_consistency($pay) ORDER BY 2, 3, 4, 5, 6;
SELECT 'motor', * FROM check_inventory_consistency($motor) ORDER BY 2, 3, 4, 5, 6;
SELECT 'report ' || s, k, (SELECT string_agg(x, ' | ' ORDER BY x) FROM jsonb_array_elements_text(consistency_report(s) -> k) x)
  FROM unnest('{system,quick,loan,payment,motor}'::text[]) s, unnest('{errors,warnings}'::text[]) k ORDER BY 1, 2;
SELECT 'report loan', consistency_report('loan', l) FROM unnest('{$ids}'::bigint[]) l ORDER BY l;
SELECT 'fixes', regexp_replace(f::text, '[0-9-]{10} [0-9:]{8}\\.[0-9]+\\+00', '<now>', 'g')  -- completed_at => now()
  FROM motofinai.fix_consistency('system') f ORDER BY f.code, f.entity, f.entity_id;
SELECT 'versioned', table_name, protocol, strict, trigger_present, trigger_enabled FROM motofinai.versioned_tables ORDER BY 2;
SELECT 'runs', scope, errors, warnings FROM motofinai.check_runs ORDER BY id;
SQL
}
tmp=$(mktemp -d)
primary questions >"$tmp/primary"
standby questions >"$tmp/standby"
expect_same "the standby's answers equal the primary's" "$tmp/primary" "$tmp/standby"
echo "    ($(grep -c '^system|' "$tmp/standby") system findings, $(grep -c '^loans|' "$tmp/standby") loan findings)"
expect_eq "the checks found the injected errors" "$(grep -c '^system|error|' "$tmp/standby" | sed 's/^[1-9][0-9]*$/some/')" some

# Writes fail cleanly on the standby.
lid=${ids%%,*}
for call in \
    "SELECT * FROM motofinai.fix_consistency('system', NULL, true)" \
    "SELECT motofinai.enable_versioning('inventory_motor')" \
    "SELECT motofinai.disable_versioning('loans_loanapplication')" \
    "SELECT motofinai.enforce_consistency()" \
    "SELECT motofinai.run_check('quick')" \
    "SELECT motofinai.create_check_indexes()" \
    "SELECT motofinai.get_for_update('loans_loanapplication', $lid)" \
    "SELECT motofinai.safe_update_with_version('loans_loanapplication', $lid, 1, '{\"notes\": \"x\"}')" \
    "SELECT motofinai.safe_delete_with_version('loans_loanapplication', $lid, 1)" \
    "UPDATE loans_loanapplication SET notes = 'x', version = 1 WHERE id = $lid"; do
    expect_eq "standby: $call" "$(standby sqlstate $DB "$call")" 25006
done
# Read-only monitoring works there.
for call in "SELECT motofinai.detect_deadlocks()" "SELECT motofinai.detect_version_conflicts('loans_loanapplication')" \
            "SELECT * FROM motofinai.conflict_stats" "SELECT * FROM motofinai.check_findings('quick')"; do
    expect_eq "standby: $call" "$(standby sqlstate $DB "$call")" ok
done

for log in "$DIR/primary/server.log" "$DIR/standby/server.log"; do
    crashes=$(SERVER_LOG="$log" crashes_since 0)
    [ -z "$crashes" ] && pass "no crash in $log" || fail "crash in $log: $crashes"
done
rm -rf "$tmp"
summary standby
