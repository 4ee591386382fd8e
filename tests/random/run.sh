#!/usr/bin/env bash
# Seeded randomized test (issue 13, part 4). Under a minute; prints its seed;
# MFC_SEED=<seed> replays a run (default: a new seed each run).
#
# A. Overlapping defects. A generated dataset gets a random set of defects
#    that pile up on the same loans, installments, payments and motors
#    (inject.sql), and a few loans get one payment defect each and nothing
#    else (the system check reads again only the payments of loans it
#    suspects: a defect alone on its loan must make it suspect). Then:
#    1. check_system_consistency() finds exactly what an independent, naive
#       implementation of consistency-rules.md finds (oracle.sql), and every
#       injected defect's finding is there unless a later defect masked it;
#    2. the single-entity checks of every touched loan, payment and motor
#       give the system check's rows for that entity;
#    3. fix_consistency: the dry run lists exactly what applying returns, the
#       repairs the rules call for; after them no fixable finding remains, the
#       findings are again the oracle's, those of rules reading no status are
#       unchanged, a second dry run plans nothing: without versioning, with
#       versioning, and with enforce_consistency() (loans it would refuse are
#       rolled back with a note, and COMMIT succeeds);
#    4. one deterministic case: a late payment on a past-due installment.
# B. Versioning walks (versioning_walk.py): random sequences of enable /
#    disable / ALTER TABLE / trigger drift / dump-restore steps, each followed
#    by checks of the catalog, versioned_tables, the checks and the trigger.
#
# Connection from PGHOST/PGPORT/PGUSER (superuser: session_replication_role,
# pg_restore). Needs the extension in shared_preload_libraries (blocking codes).
source "$(dirname "$0")/../lib.sh"
HERE="$(cd "$(dirname "$0")" && pwd)"

SEED="${MFC_SEED:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1073741823 + 1 ))}"
echo "seed: $SEED   (replay: MFC_SEED=$SEED bash tests/random/run.sh)"
RANDOM=$SEED   # bash's own draws below replay with the seed too
N=$((300 + RANDOM % 301))              # loans
OPS=$((35 + RANDOM % 16))              # injected defects
STEPS=$((60 + RANDOM % 61))            # versioning walk steps
INDEXES=$((RANDOM % 2))                # 1: create_check_indexes() (duplicates paired through them)
PGSEED=$(awk "BEGIN { printf \"%.9f\", $SEED / 1073741824 }")   # setseed() takes [-1, 1]
A=mfc_random_a
# A setup command that fails (set -e) still ends the run with its result line.
set -E
trap 'fail "stopped: the command at line $LINENO failed"; summary random "seed $SEED"; exit 1' ERR

# report DB LABEL SQL: SQL yields (assertion, ok, detail) rows; each is a pass or a fail.
report() {
    local out name ok detail
    if ! out=$(val -F $'\t' -d "$1" -c "$3" 2>&1); then fail "$2: $out"; return; fi
    while IFS=$'\t' read -r name ok detail; do
        if [ "$ok" = t ]; then pass "$name${detail:+ ($detail)}"; else fail "$name: $detail"; fi
    done <<<"$out"
}

echo "== A. $OPS overlapping defects on $N generated loans, check indexes: $INDEXES"
fresh_db $A
load_motofinai $A $N
if [ "$INDEXES" = 1 ]; then q -d $A -c "SELECT motofinai.create_check_indexes()" >/dev/null; fi
q -d $A -f "$HERE/oracle.sql" -f "$HERE/inject.sql" -f "$HERE/assert.sql" >/dev/null
q -d $A -c "SELECT mfc_random.inject($PGSEED, $OPS)" >/dev/null
val -d $A -c "SELECT 'ops: ' || string_agg(name || '(' || coalesce(target, '') || ')', ' ' ORDER BY op) FROM mfc_random.ops"
report $A "A1" "SELECT * FROM mfc_assert.system_is_oracle('A1 overlapping defects')"
report $A "A1" "SELECT * FROM mfc_assert.injections()"
report $A "A2" "SELECT * FROM mfc_assert.single_is_system()"

# fix_case NAME ENFORCED SETUP_SQL: A3 on a copy of the injected database.
fix_case() {
    local db=mfc_random_fix_$1 err
    drop_db $db
    q -d postgres -c "CREATE DATABASE $db TEMPLATE $A"
    q -d $db -c "SET client_min_messages = warning" -c "SELECT 1 $3" -c "SELECT mfc_assert.prepare_fix()" >/dev/null
    # Dry run and apply in one transaction, so that now() (completed_at) is the same in both.
    if err=$(q -d $db 2>&1 <<'SQL'
BEGIN;
INSERT INTO mfc_assert.dry SELECT * FROM motofinai.fix_consistency('system', NULL, false);
INSERT INTO mfc_assert.applied SELECT * FROM motofinai.fix_consistency('system', NULL, true);
COMMIT;
SQL
    ); then
        pass "A3 $1: dry run, apply and COMMIT in one transaction succeed"
        report $db "A3" "SELECT * FROM mfc_assert.fixes('A3 $1', $2)"
        report $db "A3" "SELECT * FROM mfc_assert.system_is_oracle('A3 $1, after the repairs')"
    else
        fail "A3 $1: dry run, apply and COMMIT in one transaction: $(head -c 600 <<<"$err")"
    fi
    drop_db $db
}
# versioning: $vsql = ", motofinai.enable_versioning(...)" for the three tables, options drawn
# from the seed (not in a $(...) subshell: bash reseeds RANDOM there).
versioning() {
    local t p s
    vsql=""
    for t in loans_loanapplication loans_paymentschedule payments_payment; do
        p=expected; ((RANDOM % 2)) && p=increment
        s=false; ((RANDOM % 2)) && s=true
        vsql+=", motofinai.enable_versioning('$t', protocol => '$p', strict => $s)"
    done
}
echo "== A3. fixes"
fix_case plain false ""
versioning
fix_case versioned false "$vsql"
vsql=""; ((RANDOM % 2)) && versioning
fix_case enforced true ", motofinai.enforce_consistency()$vsql"
drop_db $A

echo "== A4. a late payment on a past-due installment still marked due"
C=mfc_random_case
fresh_db $C
load_motofinai $C 40
q -d $C -f "$HERE/oracle.sql" -f "$HERE/inject.sql" -f "$HERE/assert.sql" >/dev/null
q -d $C >/dev/null <<'SQL'
-- An active loan with two installments to come; the first falls due 5 days
-- ago, is still 'due', and its payment is recorded today.
CREATE TABLE late AS
SELECT l.id AS loan, (SELECT s.id FROM loans_paymentschedule s WHERE s.loan_application_id = l.id AND s.status = 'due'
                       ORDER BY s.sequence LIMIT 1) AS inst
  FROM loans_loanapplication l
 WHERE l.status = 'active' AND l.id % 7 <> 0
   AND (SELECT count(*) FROM loans_paymentschedule s WHERE s.loan_application_id = l.id AND s.status = 'due') >= 2
 ORDER BY l.id LIMIT 1;
UPDATE loans_paymentschedule SET due_date = current_date - 5 WHERE id = (SELECT inst FROM late);
INSERT INTO payments_payment (amount, payment_date, reference, notes, recorded_at, loan_application_id, recorded_by_id,
                              schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
SELECT s.total_amount, current_date, 'LATE-1', '', now(), s.loan_application_id, 1, s.id, '', '', '', 'cash', false
  FROM loans_paymentschedule s WHERE s.id = (SELECT inst FROM late);
INSERT INTO mfc_assert.dry SELECT * FROM motofinai.fix_consistency('loan', (SELECT loan FROM late), false);
INSERT INTO mfc_assert.applied SELECT * FROM motofinai.fix_consistency('loan', (SELECT loan FROM late), true);
SQL
report $C "A4" "$(cat <<'SQL'
SELECT 'A4 the dry run plans one repair: payment_not_applied, the installment -> paid',
       count(*) = 1 AND bool_and(d.code = 'payment_not_applied' AND d.entity_id = l.inst
                                 AND d.changes -> 'status' ->> 'to' = 'paid'),
       string_agg(format('%s %s %s: %s', d.code, d.entity, d.entity_id, d.summary), '; ')
  FROM late l LEFT JOIN mfc_assert.dry d ON true
UNION ALL
SELECT 'A4 applying makes that one repair, applied, without a note',
       count(*) = 1 AND bool_and(a.code = 'payment_not_applied' AND a.entity_id = l.inst AND a.applied
                                 AND a.note IS NULL),
       string_agg(format('%s %s %s applied=%s note=%s', a.code, a.entity, a.entity_id, a.applied, a.note), '; ')
  FROM late l LEFT JOIN mfc_assert.applied a ON true
UNION ALL
SELECT 'A4 the installment is paid as of the payment''s date and the loan is consistent',
       s.status = 'paid' AND s.paid_at::date = current_date
       AND NOT EXISTS (SELECT FROM motofinai.check_loan_consistency(l.loan)),
       format('status %s, paid_at %s, findings: %s', s.status, s.paid_at,
              (SELECT string_agg(code, ', ') FROM motofinai.check_loan_consistency(l.loan)))
  FROM late l JOIN loans_paymentschedule s ON s.id = l.inst
SQL
)"
drop_db $C

echo "== B. versioning walk, $STEPS steps"
W=mfc_random_walk
fresh_db $W
load_motofinai $W 40
q -d $W >/dev/null <<'SQL'
-- The walk's own table, and on both tables an integer column a drifted trigger can use.
CREATE TABLE walk_items (id bigint PRIMARY KEY, label text NOT NULL DEFAULT '');
INSERT INTO walk_items (id, label) SELECT g, 'item ' || g FROM generate_series(1, 5) g;
ALTER TABLE walk_items ADD COLUMN alt_version integer NOT NULL DEFAULT 1;
ALTER TABLE payments_payment ADD COLUMN alt_version integer NOT NULL DEFAULT 1;
SQL
while IFS= read -r line; do
    case "$line" in
    "ok: "*) pass "B ${line#ok: }" ;;
    "FAIL: "*) fail "B ${line#FAIL: }" ;;
    *) echo "$line" ;;
    esac
done < <(python3 "$HERE/versioning_walk.py" --seed "$SEED" --steps "$STEPS" --db $W 2>&1 || echo "FAIL: versioning_walk.py exited $?")
drop_db $W
drop_db ${W}_b

trap - ERR
summary random "seed $SEED"
