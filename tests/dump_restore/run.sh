#!/usr/bin/env bash
# pg_dump / pg_restore of a database with versioned tables.
#  1. A full round trip (pg_dump -Fc, pg_restore into a new database) keeps
#     the registration, every row's version and modified time, the triggers
#     (a stale UPDATE is still rejected with 40001, an UPDATE bumps the
#     version) and gives the same system check as the source.
#  2. Orphans made in the source with session_replication_role = replica
#     (motofinai_gen.inject) cannot be restored normally (the foreign keys
#     refuse them), but a schema restore followed by a data-only restore with
#     --disable-triggers loads them; check_system_consistency() then reports
#     every orphaned_rows / foreign_key_violation of the ground truth.
# Connection from PGHOST/PGPORT/PGUSER. Needs superuser (--disable-triggers).
source "$(dirname "$0")/../lib.sh"
SRC=mfc_dump_src DST=mfc_dump_dst DST2=mfc_dump_dst2 DST3=mfc_dump_dst3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fresh_db $SRC
load_motofinai $SRC 200
q -d $SRC >/dev/null <<'SQL'
SELECT motofinai.enable_versioning('loans_loanapplication');
SELECT motofinai.enable_versioning('payments_payment', protocol => 'increment', strict => true);
SELECT motofinai.enable_versioning('loans_paymentschedule', mode => 'observe');
SELECT motofinai.enable_versioning('inventory_motor', version_column => 'row_version',
                                   modified_column => 'changed_at', create_index => false);
-- Versions other than 1, and two defects that break no foreign key.
UPDATE loans_loanapplication SET notes = 'edited' WHERE id % 3 = 0;
UPDATE loans_loanapplication SET notes = 'edited twice' WHERE id % 6 = 0;
UPDATE loans_loanapplication SET principal_amount = principal_amount + 1 WHERE id = 21;
UPDATE inventory_motor SET chassis_number = (SELECT chassis_number FROM inventory_motor WHERE id = 1) WHERE id = 2;
SQL

# snapshot DB ASPECT: what must survive the round trip, as sorted text.
snapshot() {
    case "$2" in
    registration) val -d "$1" -c "SELECT * FROM motofinai.versioned_tables ORDER BY 1" \
                              -c "SELECT tgrelid::regclass, pg_get_triggerdef(oid), tgenabled FROM pg_trigger
                                   WHERE tgname LIKE 'motofinai%' ORDER BY 1, 2" ;;
    versions) val -d "$1" <<'SQL' ;;
SELECT format('SELECT %L, count(*), sum(%I), md5(string_agg(concat_ws(%L, id, %I, %I), %L ORDER BY id)) FROM %s',
              tbl, version_column, ':', version_column, modified_column, ',', tbl)
  FROM motofinai.versioning_config ORDER BY tbl::text
\gexec
SQL
    system) val -d "$1" -c "SELECT * FROM check_system_consistency() ORDER BY 1, 2, 3, 4, 5, 6::text" ;;
    esac
}
compare() { # compare A B ASPECT...
    local a="$1" b="$2" aspect; shift 2
    for aspect in "$@"; do
        snapshot "$a" "$aspect" >"$tmp/$a.$aspect"; snapshot "$b" "$aspect" >"$tmp/$b.$aspect"
        expect_same "$b: $aspect as in $a" "$tmp/$a.$aspect" "$tmp/$b.$aspect"
    done
}

echo "== 1. full round trip"
"$PG_BIN/pg_dump" -Fc -d $SRC -f "$tmp/full.dump"
fresh_db $DST
"$PG_BIN/pg_restore" --exit-on-error -d $DST "$tmp/full.dump"
compare $SRC $DST registration versions system
expect_eq "the source's checks find the defects" \
    "$(val -d $SRC -c "SELECT string_agg(DISTINCT code, ',') FROM check_system_consistency() WHERE severity = 'error'")" \
    "duplicate_vin,principal_mismatch"

# The triggers work in the restored database. Loan 6 was updated twice (version 3).
expect_eq "restored loan 6 is at version 3" "$(val -d $DST -c "SELECT version FROM loans_loanapplication WHERE id = 6")" 3
expect_eq "stale UPDATE rejected" \
    "$(sqlstate $DST "UPDATE loans_loanapplication SET notes = 'x', version = 2 WHERE id = 6")" 40001
expect_eq "current UPDATE bumps the version" \
    "$(val -d $DST -c "UPDATE loans_loanapplication SET notes = 'x', version = 3 WHERE id = 6 RETURNING version, last_modified_at = now()")" "4|t"
expect_eq "UPDATE without the version bumps it" \
    "$(val -d $DST -c "UPDATE inventory_motor SET notes = 'x' WHERE id = 1 RETURNING row_version")" 2
pid=$(val -d $DST -c "SELECT min(id) FROM payments_payment")
expect_eq "strict table: UPDATE without the version refused" \
    "$(sqlstate $DST "UPDATE payments_payment SET notes = 'x' WHERE id = $pid")" MF001
expect_eq "increment protocol: stating the stored version is stale" \
    "$(sqlstate $DST "UPDATE payments_payment SET notes = 'x', version = 1 WHERE id = $pid")" 40001
expect_eq "row helper on the restored table" \
    "$(val -d $DST -c "SELECT motofinai.safe_update_with_version('loans_loanapplication', 6, 4, '{\"notes\": \"y\"}') ->> 'version'")" 5

echo "== 2. orphans restored with --disable-triggers"
q -d $SRC -c "SELECT motofinai_gen.inject(1)" >/dev/null   # runs as session_replication_role = replica
"$PG_BIN/pg_dump" -Fc -d $SRC -f "$tmp/broken.dump"
fresh_db $DST2
"$PG_BIN/pg_restore" --exit-on-error --schema-only -d $DST2 "$tmp/broken.dump"
"$PG_BIN/pg_restore" --exit-on-error --data-only --disable-triggers -d $DST2 "$tmp/broken.dump"
compare $SRC $DST2 registration versions system
val -d $DST2 -c "SELECT code, coalesce(details->>'relation' || '.' || (details->>'column'), details->>'constraint')
                   FROM check_system_consistency() WHERE code IN ('orphaned_rows', 'foreign_key_violation') ORDER BY 1, 2" >"$tmp/found"
val -d $DST2 -c "SELECT code, subject FROM motofinai_gen.expected
                  WHERE code IN ('orphaned_rows', 'foreign_key_violation') ORDER BY 1, 2" >"$tmp/expected"
expect_same "orphans and broken foreign keys reported as injected" "$tmp/expected" "$tmp/found"
# Control: the same data in one transaction with the triggers on: the foreign keys refuse the orphans.
fresh_db $DST3
"$PG_BIN/pg_restore" --exit-on-error --schema-only -d $DST3 "$tmp/broken.dump"
if "$PG_BIN/pg_restore" --single-transaction --data-only -d $DST3 "$tmp/broken.dump" 2>"$tmp/err3"; then
    fail "a data-only restore with triggers loaded the orphans"
else
    expect_eq "with triggers on, a foreign key refuses an injected orphan" \
        "$(grep -Eo 'Key \([a-z_]+\)=\(9000[0-9]{5}\) is not present' "$tmp/err3" | wc -l | tr -d ' ')" 1
fi

for db in $SRC $DST $DST2 $DST3; do drop_db $db; done
summary dump_restore
