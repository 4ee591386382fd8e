#!/usr/bin/env bash
# Incremental checks against full ones, on random writes (seeded: MFC_SEED
# replays a run; a new seed each run otherwise, printed), and the alerts of
# recorded runs (new errors only, unless motofinai.alert_on_errors = 'all').
#
# Each round makes random writes through the application's path (triggers
# on) to loans, installments, payments, motors and users, then runs
# run_check('changed') and asserts that its findings are exactly the full
# check's findings of the loan and payment rules for the loans it checked,
# that it checked every loan the writes touched, that the history's open
# findings for those loans are those findings, and that no open finding of
# those rules is stale anywhere (possible duplicates across loans aside).
source "$(dirname "$0")/../lib.sh"
DB=mfc_history
SEED="${MFC_SEED:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 + 1 ))}"
ROUNDS="${HISTORY_ROUNDS:-8}"
echo "seed: $SEED   (replay: MFC_SEED=$SEED bash tests/history/run.sh)"
fresh_db $DB
load_motofinai $DB 1000
q -d $DB >/dev/null <<SQL
SELECT motofinai_gen.inject(1);
SELECT motofinai.create_check_indexes();
SELECT motofinai.track_changes();
SELECT motofinai.run_check('system');
SELECT setseed($SEED / 1000001.0);
-- One random write of the kind the app makes; returns the loans it touches.
CREATE FUNCTION random_write() RETURNS SETOF bigint LANGUAGE plpgsql AS \$\$
DECLARE
    loan bigint := 1 + floor(random() * 1000)::bigint;
    other bigint := 1 + floor(random() * 1000)::bigint;
    kind int := floor(random() * 14)::int;
    inst bigint;
BEGIN
    CASE kind
    WHEN 0 THEN UPDATE loans_loanapplication SET principal_amount = principal_amount + 1 WHERE id = loan;
    WHEN 1 THEN UPDATE loans_loanapplication SET status = 'completed' WHERE id = loan AND status = 'active';
    WHEN 2 THEN UPDATE loans_paymentschedule SET status = CASE status WHEN 'paid' THEN 'due' ELSE 'paid' END
                 WHERE id = (SELECT min(id) FROM loans_paymentschedule WHERE loan_application_id = loan);
    WHEN 3 THEN UPDATE payments_payment SET payment_date = current_date + 5
                 WHERE id = (SELECT max(id) FROM payments_payment WHERE loan_application_id = loan);
    WHEN 4 THEN DELETE FROM payments_payment
                 WHERE id = (SELECT max(id) FROM payments_payment WHERE loan_application_id = loan);
    WHEN 5 THEN UPDATE inventory_motor SET approval_status = CASE approval_status WHEN 'approved' THEN 'pending'
                                                               ELSE 'approved' END
                 WHERE id = (SELECT motor_id FROM loans_loanapplication WHERE id = loan);
    WHEN 6 THEN UPDATE users_user SET is_active = NOT is_active
                 WHERE id = (SELECT submitted_by_id FROM loans_loanapplication WHERE id = loan);
    -- A payment given another loan's payment's reference (a duplicate, which
    -- the hash index prefilter must let through), or a reference of its own
    -- (a duplicate gone; the old reference's index entry stays until VACUUM).
    WHEN 9 THEN UPDATE payments_payment
                   SET reference = (SELECT reference FROM payments_payment WHERE loan_application_id = other
                                       AND btrim(reference) <> '' ORDER BY id LIMIT 1)
                 WHERE id = (SELECT max(id) FROM payments_payment WHERE loan_application_id = loan)
                   AND EXISTS (SELECT FROM payments_payment WHERE loan_application_id = other AND btrim(reference) <> '');
    WHEN 10 THEN UPDATE payments_payment SET reference = 'OWN-' || id
                  WHERE id = (SELECT min(id) FROM payments_payment WHERE loan_application_id = loan);
    -- A payment recorded the app's way, its installment marked paid in the
    -- same transaction (tracking looks no installment up: the installment's
    -- own row noted its loan): on the loan's next due installment (11), or
    -- on one of another loan (12: both loans).
    WHEN 11, 12 THEN
        SELECT s.id INTO inst FROM loans_paymentschedule s
         WHERE s.loan_application_id = CASE kind WHEN 11 THEN loan ELSE other END AND s.status <> 'paid'
           AND NOT EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id) AND (kind = 11 OR other <> loan)
         ORDER BY s.sequence LIMIT 1;
        IF FOUND THEN
            INSERT INTO payments_payment (amount, payment_date, reference, notes, recorded_at, loan_application_id,
                recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
            SELECT s.total_amount, current_date, 'H-' || s.id, '', now(), loan, 1, s.id, '', '', '', 'cash', false
              FROM loans_paymentschedule s WHERE s.id = inst;
            UPDATE loans_paymentschedule SET status = 'paid', paid_at = now() WHERE id = inst;
        END IF;
    -- A payment moved to another loan (its findings' loan changes): both loans.
    WHEN 7 THEN UPDATE payments_payment SET loan_application_id = other
                 WHERE id = (SELECT max(id) FROM payments_payment WHERE loan_application_id = loan) AND other <> loan;
    -- A payment put on another loan's unpaid installment, which changes that
    -- loan's findings (and those of the loan it leaves): both loans.
    WHEN 8 THEN UPDATE payments_payment
            SET schedule_id = (SELECT min(s.id) FROM loans_paymentschedule s
                                WHERE s.loan_application_id = other
                                  AND NOT EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id))
          WHERE id = (SELECT max(id) FROM payments_payment WHERE loan_application_id = loan) AND other <> loan
            AND EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = other
                          AND NOT EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id));
    -- A loan alone, one of whose installments a payment of another loan (or
    -- of none) pays, that payment unchanged: its loan's run must see it.
    WHEN 13 THEN
        SELECT s.loan_application_id INTO loan FROM payments_payment p
          JOIN loans_paymentschedule s ON s.id = p.schedule_id
         WHERE p.loan_application_id IS DISTINCT FROM s.loan_application_id ORDER BY random() LIMIT 1;
        UPDATE loans_loanapplication SET notes = notes || '.' WHERE id = loan;
    END CASE;
    IF FOUND THEN   -- a write that changed nothing touches nothing
        RETURN QUERY SELECT loan;
        IF kind IN (7, 8, 12) THEN
            RETURN QUERY SELECT other;
        END IF;
    END IF;
END \$\$;
CREATE TABLE touched (loan_id bigint);
SQL
for r in $(seq 1 "$ROUNDS"); do
    writes=$(( (SEED + r * 7919) % 25 + 5 ))
    for _ in $(seq 1 "$writes"); do
        q -d $DB -c "INSERT INTO touched SELECT random_write()" >/dev/null 2>&1 || true
    done
    q -d $DB -c "CREATE TEMP TABLE x AS SELECT 1" >/dev/null   # a session between
    result=$(val -d $DB <<'SQL'
CREATE TEMP TABLE run AS SELECT * FROM motofinai.run_check('changed');
CREATE TEMP TABLE full_now AS SELECT * FROM check_system_consistency();
WITH inc AS (SELECT f ->> 'code' AS code, f ->> 'entity' AS entity, (f ->> 'entity_id')::bigint AS id,
                    f ->> 'message' AS message
               FROM run, jsonb_array_elements(run.findings) f),
     ful AS (SELECT code, entity, entity_id AS id, message FROM full_now, run
              WHERE (code, entity) IN (SELECT code, entity FROM motofinai.finding_codes() WHERE family IN ('loan', 'payment'))
                AND (coalesce((details ->> 'loan_id')::bigint, CASE WHEN entity = 'loan' THEN entity_id END) = ANY (run.loans)
                     OR (entity = 'payment' AND entity_id IN (SELECT id FROM payments_payment
                                                               WHERE loan_application_id = ANY (run.loans))))),
     hist AS (SELECT h.code, h.entity, h.entity_id AS id, h.message FROM motofinai.finding_history h, run
               WHERE h.scope = 'system' AND h.resolved_run IS NULL
                 AND (h.code, h.entity) IN (SELECT code, entity FROM motofinai.finding_codes() WHERE family IN ('loan', 'payment'))
                 AND (h.loan_id = ANY (run.loans)
                      OR (h.entity = 'payment' AND h.entity_id IN (SELECT id FROM payments_payment
                                                                    WHERE loan_application_id = ANY (run.loans))))),
     -- Every open finding of the loan and payment rules, against the full
     -- check: incremental runs of tracked writes leave none stale (but
     -- duplicates across loans, which need a full run).
     hist_all AS (SELECT code, entity, entity_id AS id, message FROM motofinai.finding_history
                   WHERE scope = 'system' AND resolved_run IS NULL AND code <> 'possible_duplicate'
                     AND (code, entity) IN (SELECT code, entity FROM motofinai.finding_codes() WHERE family IN ('loan', 'payment'))),
     ful_all AS (SELECT code, entity, entity_id AS id, message FROM full_now
                  WHERE code <> 'possible_duplicate'
                    AND (code, entity) IN (SELECT code, entity FROM motofinai.finding_codes() WHERE family IN ('loan', 'payment')))
SELECT (SELECT count(*) FROM (TABLE inc EXCEPT TABLE ful) a) || ' ' || (SELECT count(*) FROM (TABLE ful EXCEPT TABLE inc) b)
       || ' ' || (SELECT count(*) FROM touched t, run WHERE NOT t.loan_id = ANY (run.loans))
       || ' ' || (SELECT count(*) FROM (TABLE hist EXCEPT TABLE ful) c) || ' ' || (SELECT count(*) FROM (TABLE ful EXCEPT TABLE hist) d)
       || ' ' || (SELECT cardinality(loans) FROM run) || ' ' || (SELECT count(*) FROM inc)
       || ' ' || (SELECT count(*) FROM (TABLE hist_all EXCEPT TABLE ful_all) e)
       || ' ' || (SELECT count(*) FROM (TABLE ful_all EXCEPT TABLE hist_all) f);
TRUNCATE touched;
SQL
)
    read -r only_inc only_full missed hist_extra hist_missing checked found stale unseen <<<"$result"
    expect_eq "round $r ($checked loans checked, $found findings): incremental = full for those loans" \
              "$only_inc $only_full" "0 0"
    expect_eq "round $r: every touched loan checked" "$missed" "0"
    expect_eq "round $r: history's open findings = full findings for those loans" "$hist_extra $hist_missing" "0 0"
    expect_eq "round $r: every open finding (duplicates aside) = the full check's" "$stale $unseen" "0 0"
done

# Alerts: a full run with no new errors sends none; with 'all' it does.
alerts() { # alerts SQL: notifications a session receives while running SQL
    psql -X -q -d $DB -c "LISTEN motofinai_alerts" -c "$1" -c "SELECT 1" 2>&1 | grep -c 'Asynchronous notification "motofinai_alerts".*check_errors' || true
}
alerts "SELECT motofinai.run_check('system')" >/dev/null
expect_eq "a run with no new errors sends no check_errors alert" "$(alerts "SELECT motofinai.run_check('system')")" "0"
expect_eq "with alert_on_errors = all it does" \
    "$(alerts "SET motofinai.alert_on_errors = 'all'; SELECT motofinai.run_check('system')")" "1"
q -d $DB -c "UPDATE loans_loanapplication SET principal_amount = principal_amount + 1 WHERE id = 11" >/dev/null
expect_eq "a new error sends one" "$(alerts "SELECT motofinai.run_check('changed')")" "1"
drop_db $DB
summary "history, seed $SEED"
