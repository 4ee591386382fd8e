-- Incremental checks, check history (new, resolved, persisting) and
-- accepted findings.
SELECT motofinai_gen.generate(1000);
SELECT motofinai_gen.inject(1);
SELECT motofinai.create_check_indexes();
SET client_min_messages = warning;
TRUNCATE motofinai.check_runs, motofinai.finding_history;
RESET client_min_messages;

-- Without tracking, an incremental run says what to do.
SELECT split_part(show_error($$SELECT motofinai.run_check('changed')$$), E'\n', 1) AS error;
SELECT motofinai.track_changes();
SELECT tgrelid::regclass AS "table", tgname, tgdeferrable FROM pg_trigger
 WHERE tgname LIKE 'motofinai_track%' ORDER BY tgrelid::regclass::text, tgname;

-- The first run of a history: everything is new.
SELECT scope, errors > 0 AS has_errors, new_errors = errors AS all_new_errors, new_warnings = warnings AS all_new_warnings,
       resolved FROM motofinai.run_check('system');
-- A run that finds the same: nothing new, nothing resolved, all persisting.
SELECT scope, new_errors, new_warnings, resolved, loans FROM motofinai.run_check('changed');

-- Changes: a loan repaired, a loan broken, a payment broken; only their
-- loans are checked, and the result is the full check's for those loans.
SELECT entity_id AS broken FROM check_system_consistency() WHERE code = 'principal_mismatch' LIMIT 1 \gset
UPDATE loans_loanapplication SET principal_amount = loan_amount - down_payment WHERE id = :broken;
UPDATE loans_loanapplication SET principal_amount = principal_amount + 5 WHERE id = 45;
SELECT payment_date AS paid_on FROM payments_payment
 WHERE id = (SELECT min(id) FROM payments_payment WHERE loan_application_id = 46) \gset
UPDATE payments_payment SET payment_date = current_date + 3
 WHERE id = (SELECT min(id) FROM payments_payment WHERE loan_application_id = 46);
BEGIN;
UPDATE loans_loanapplication SET notes = 'rolled back' WHERE id = 47;
ROLLBACK;
SELECT array_agg(loan_id ORDER BY loan_id) = ARRAY(SELECT unnest(ARRAY[45, 46, :broken]::bigint[]) ORDER BY 1) AS queued
  FROM (SELECT DISTINCT loan_id FROM motofinai.changed_loans) q;
CREATE TEMP TABLE full_now AS SELECT * FROM check_system_consistency();
SELECT new_errors, new_warnings, resolved, loans = ARRAY(SELECT unnest(ARRAY[45, 46, :broken]::bigint[]) ORDER BY 1) AS checked_the_changed
  FROM motofinai.run_check('changed');
SELECT count(*) AS queue_left FROM motofinai.changed_loans;
-- Equal to the full check restricted to those loans (loan and payment rules).
WITH inc AS (SELECT f ->> 'code' AS code, f ->> 'entity' AS entity, (f ->> 'entity_id')::bigint AS id, f ->> 'message' AS message
               FROM motofinai.check_runs r, jsonb_array_elements(r.findings) f
              WHERE r.id = (SELECT max(id) FROM motofinai.check_runs)),
     ful AS (SELECT code, entity, entity_id AS id, message FROM full_now f
              WHERE (code, entity) IN (SELECT code, entity FROM motofinai.finding_codes() WHERE family IN ('loan', 'payment'))
                AND (coalesce((details ->> 'loan_id')::bigint, CASE WHEN entity = 'loan' THEN entity_id END) IN (45, 46, :broken)
                     OR (entity = 'payment' AND entity_id IN (SELECT id FROM payments_payment
                                                               WHERE loan_application_id IN (45, 46, :broken)))))
SELECT (SELECT count(*) FROM (TABLE inc EXCEPT TABLE ful) a) AS only_incremental,
       (SELECT count(*) FROM (TABLE ful EXCEPT TABLE inc) b) AS only_full,
       (SELECT count(*) FROM inc) AS findings;
-- The history says what appeared and what went away.
SELECT code, entity, entity_id = :broken AS the_repaired_loan FROM motofinai.finding_history
 WHERE resolved_run = (SELECT max(id) FROM motofinai.check_runs) ORDER BY 1, 2;
SELECT code, entity, entity_id FROM motofinai.current_findings WHERE new ORDER BY 1, 2, 3;
-- A payment's finding whose details name no loan (future_payment_date) is
-- kept with its payment's loan: the next incremental run of that loan
-- resolves it once the payment is repaired.
UPDATE payments_payment SET payment_date = :'paid_on'
 WHERE id = (SELECT min(id) FROM payments_payment WHERE loan_application_id = 46);
SELECT resolved, loans FROM motofinai.run_check('changed');
SELECT code, entity, loan_id FROM motofinai.finding_history
 WHERE resolved_run = (SELECT max(id) FROM motofinai.check_runs);
-- The open findings carry the details the last run reported, and the loan-family
-- ones (on a loan or an installment) their loan.
SELECT count(*) AS open, count(*) FILTER (WHERE h.details IS DISTINCT FROM f.details) AS details_differ,
       count(*) FILTER (WHERE h.entity IN ('loan', 'schedule') AND h.loan_id IS NULL) AS loan_family_without_loan
  FROM motofinai.current_findings h
  LEFT JOIN check_system_consistency() f
    ON f.code = h.code AND f.entity = h.entity AND f.entity_id = h.entity_id
 WHERE h.scope = 'system' AND h.entity_id IS NOT NULL;
SELECT day = current_date AS today, code, findings > 0 AS present, new, resolved FROM motofinai.finding_trends
 WHERE code IN ('principal_mismatch', 'future_payment_date') AND scope = 'system' ORDER BY code;

-- Accepted findings: left out of the report, the counts, the alerts and
-- enforcement; the check functions still show them, marked.
SELECT (motofinai.accept_finding('principal_mismatch', 'loan', 45, 'agreed with the branch: rounding of a promo')).accepted_by = current_user AS accepted;
SELECT (motofinai.accept_finding('schedule_total_mismatch', 'loan', 45, 'the same promo', now() + interval '30 days')).code;
SELECT code, details -> 'accepted' ->> 'reason' AS reason FROM check_loan_consistency(45) WHERE code = 'principal_mismatch';
SELECT consistency_report('loan', 45) -> 'errors' AS errors;
SELECT motofinai.enforce_consistency();
UPDATE loans_loanapplication SET notes = 'touched' WHERE id = 45;   -- commits: the finding is accepted
SELECT split_part(show_error($$UPDATE loans_loanapplication SET notes = 'x', principal_amount = principal_amount + 1 WHERE id = 44$$), E'\n', 1) AS not_accepted;
SELECT motofinai.enforce_consistency(false);
SELECT errors, new_errors FROM motofinai.run_check('changed');
-- Expired: it comes back.
UPDATE motofinai.accepted_findings SET until = now() - interval '1 second' WHERE entity_id = 45 AND code = 'principal_mismatch';
SELECT consistency_report('loan', 45) -> 'errors' AS errors;
SELECT motofinai.unaccept_finding('principal_mismatch', 'loan', 45) AS withdrawn;
-- Bad input, and who may accept.
SELECT split_part(show_error($$SELECT motofinai.accept_finding('no_such_code', 'loan', 1, 'x')$$), E'\n', 1) AS error;
SELECT split_part(show_error($$SELECT motofinai.accept_finding('overdue', 'loan', 1, '   ')$$), E'\n', 1) AS error;
SELECT split_part(show_error($$SELECT motofinai.accept_finding('overdue', 'loan', 1, 'late', now() - interval '1 day')$$), E'\n', 1) AS error;
SELECT split_part(show_error($$SELECT motofinai.accept_finding(NULL, 'loan', 1, 'x')$$), E'\n', 1) AS error;
CREATE ROLE regress_mfc_clerk;
GRANT USAGE ON SCHEMA motofinai TO regress_mfc_clerk;
SET ROLE regress_mfc_clerk;
SELECT split_part(show_error($$SELECT motofinai.accept_finding('overdue', 'loan', 1, 'late')$$), E'\n', 1) AS error;
RESET ROLE;
GRANT INSERT, UPDATE ON motofinai.accepted_findings TO regress_mfc_clerk;
SET ROLE regress_mfc_clerk;
SELECT accepted_by FROM motofinai.accept_finding('overdue', 'loan', 1, 'late');
RESET ROLE;
DELETE FROM motofinai.accepted_findings;
DROP OWNED BY regress_mfc_clerk;
DROP ROLE regress_mfc_clerk;

-- A full run after all that: what it found again is no news (alerts go
-- out for new errors only: tests/history/run.sh listens to them).
SELECT new_errors, resolved FROM motofinai.run_check('system');
SELECT motofinai.track_changes(false);
SELECT count(*) AS tracking_triggers FROM pg_trigger WHERE tgname LIKE 'motofinai_track%';
