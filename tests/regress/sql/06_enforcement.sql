-- Transaction safety: a transaction that would leave a loan inconsistent is
-- rolled back at COMMIT (loans: 5, 6, 8 active; 15 completed; 20 pending).
SELECT motofinai_gen.generate(200);
SELECT motofinai.enforce_consistency();
SELECT tgrelid::regclass AS "table", tgname, tgconstraint <> 0 AS is_constraint, tgdeferrable, tginitdeferred
  FROM pg_trigger WHERE tgname IN ('motofinai_consistency', 'motofinai_enforce_mark') ORDER BY "table"::text, 2;
-- Idempotent.
SELECT motofinai.enforce_consistency();
SELECT count(*) FROM pg_trigger WHERE tgname IN ('motofinai_consistency', 'motofinai_enforce_mark');

-- A payment as the application records one: (loan, installment, amount, reference).
CREATE FUNCTION record_payment(bigint, bigint, numeric, text) RETURNS void LANGUAGE sql AS $$
INSERT INTO payments_payment (amount, payment_date, reference, notes, recorded_at, loan_application_id,
    recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
VALUES ($3, current_date, $4, '', now(), $1, 1, $2, '', '', '', 'cash', false) $$;

-- Recording a payment correctly commits.
SELECT id AS inst, total_amount AS amount FROM loans_paymentschedule
 WHERE loan_application_id = 5 AND status = 'due' ORDER BY sequence LIMIT 1 \gset
BEGIN;
SELECT record_payment(5, :inst, :amount, 'OR-1');
UPDATE loans_paymentschedule SET status = 'paid', paid_at = now() WHERE id = :inst;
COMMIT;
SELECT status FROM loans_paymentschedule WHERE id = :inst;

-- Overpaying rolls back at COMMIT, naming the loan, with the report in DETAIL.
SELECT id AS inst FROM loans_paymentschedule
 WHERE loan_application_id = 5 AND status = 'due' ORDER BY sequence LIMIT 1 \gset
BEGIN;
SELECT record_payment(5, :inst, 100000, 'OR-2');
UPDATE loans_paymentschedule SET status = 'paid', paid_at = now() WHERE id = :inst;
COMMIT;
SELECT count(*) AS payments_kept FROM payments_payment WHERE reference = 'OR-2';

-- A payment of loan 5 recorded on an unpaid installment of loan 8 leaves loan
-- 8 with an installment that has a payment but is not marked paid: the
-- COMMIT rolls back naming loan 8, though no row of loan 8 changed.
SELECT id AS inst8, total_amount AS amount8 FROM loans_paymentschedule
 WHERE loan_application_id = 8 AND status = 'due' ORDER BY sequence LIMIT 1 \gset
BEGIN;
SELECT record_payment(5, :inst8, :amount8, 'OR-3');
COMMIT;
SELECT count(*) AS payments_kept FROM payments_payment WHERE reference = 'OR-3';
DROP FUNCTION record_payment;

-- Completing an unpaid loan rolls back; so does a transaction spoiling two loans, naming both.
UPDATE loans_loanapplication SET status = 'completed', completed_at = now() WHERE id = 6;
BEGIN;
UPDATE loans_loanapplication SET status = 'completed', completed_at = now() WHERE id IN (6, 8);
COMMIT;
SELECT id, status FROM loans_loanapplication WHERE id IN (6, 8) ORDER BY id;

-- The error's SQLSTATE and fields, checked at once with SET CONSTRAINTS ... IMMEDIATE.
SELECT show_error($$UPDATE loans_loanapplication SET status = 'completed' WHERE id = 6;
                    SET CONSTRAINTS motofinai_consistency IMMEDIATE$$);
BEGIN;
UPDATE loans_loanapplication SET status = 'completed' WHERE id = 6;
SET CONSTRAINTS motofinai_consistency IMMEDIATE;
ROLLBACK;
-- Fixing the data before COMMIT is fine: the check sees the final state.
BEGIN;
UPDATE loans_loanapplication SET status = 'completed' WHERE id = 6;
UPDATE loans_loanapplication SET status = 'active' WHERE id = 6;
COMMIT;

-- Warnings never block: a paid loan left active (paid_not_completed) commits.
BEGIN;
UPDATE loans_loanapplication SET status = 'active', completed_at = NULL WHERE id = 15;
COMMIT;
SELECT code FROM check_loan_consistency(15);

-- Which codes block is configurable.
SET motofinai.blocking_codes = 'principal_mismatch';
UPDATE loans_loanapplication SET status = 'completed' WHERE id = 8;
UPDATE loans_loanapplication SET principal_amount = principal_amount + 1 WHERE id = 20;
RESET motofinai.blocking_codes;
SELECT id, status FROM loans_loanapplication WHERE id = 8;

-- assert_consistent: the same error at once, mid-transaction.
SELECT show_error($$SELECT motofinai.assert_consistent('loan', 8)$$);
SELECT motofinai.assert_consistent('loan', 5);
SELECT motofinai.assert_consistent('loan', 15);
SELECT motofinai.assert_consistent('loan', 424242);
UPDATE payments_payment SET payment_date = current_date + 3 WHERE id = (SELECT min(id) FROM payments_payment WHERE loan_application_id = 9);
SELECT show_error($$SELECT motofinai.assert_consistent('payment', (SELECT min(id) FROM payments_payment WHERE loan_application_id = 9))$$);
SELECT show_error($$SELECT motofinai.assert_consistent(NULL, 1)$$);
SELECT show_error($$SELECT motofinai.assert_consistent('loan', NULL)$$);
SELECT show_error($$SELECT motofinai.assert_consistent('planet', 1)$$);
SELECT show_error($$SELECT motofinai.enforce_consistency(NULL)$$);
SET motofinai.blocking_codes = 'completed_not_paid';
UPDATE loans_loanapplication SET status = 'active' WHERE id = 8;
RESET motofinai.blocking_codes;

-- With versioning (on since 01_enable): the deferred check sees the final
-- state; the versions move as before, and a rolled-back one does not.
SELECT table_name, trigger_enabled FROM motofinai.versioned_tables WHERE table_name::text LIKE 'loans%' ORDER BY table_name::text;
SELECT version AS v FROM loans_loanapplication WHERE id = 15 \gset
BEGIN;
UPDATE loans_loanapplication SET notes = 'called', version = :v WHERE id = 15;
UPDATE loans_loanapplication SET status = 'completed', version = :v + 1 WHERE id = 15;
COMMIT;
SELECT status, version - :v AS versions_added FROM loans_loanapplication WHERE id = 15;
SELECT version AS v FROM loans_loanapplication WHERE id = 10 \gset
BEGIN;
UPDATE loans_loanapplication SET status = 'completed', version = :v WHERE id = 10;
COMMIT;
SELECT status, version - :v AS versions_added FROM loans_loanapplication WHERE id = 10;

-- Deleting a loan with its installments and payments is not an inconsistency.
BEGIN;
DELETE FROM payments_payment WHERE loan_application_id = 11;
DELETE FROM loans_paymentschedule WHERE loan_application_id = 11;
DELETE FROM loans_loanapplication WHERE id = 11;
COMMIT;
SELECT count(*) FROM loans_loanapplication WHERE id = 11;
-- Deleting only a payment leaves its installment paid without one.
DELETE FROM payments_payment WHERE id = (SELECT min(id) FROM payments_payment WHERE loan_application_id = 12);

-- A loan touched only in a rolled-back savepoint is not checked at COMMIT,
-- even when it was inconsistent already (loan 9 is made so with triggers off);
-- touched in a savepoint that is released, it is.
SET session_replication_role = replica;
UPDATE loans_loanapplication SET status = 'completed' WHERE id = 9;
RESET session_replication_role;
BEGIN;
UPDATE loans_loanapplication SET notes = 'kept' WHERE id = 10;
SAVEPOINT s;
UPDATE loans_loanapplication SET notes = 'rolled back' WHERE id = 9;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT id, notes FROM loans_loanapplication WHERE id IN (9, 10) ORDER BY id;
BEGIN;
SAVEPOINT s;
UPDATE loans_loanapplication SET notes = 'released' WHERE id = 9;
RELEASE SAVEPOINT s;
COMMIT;
SET session_replication_role = replica;
UPDATE loans_loanapplication SET status = 'active' WHERE id = 9;
RESET session_replication_role;

-- Turned off, nothing is checked at COMMIT any more.
SELECT motofinai.enforce_consistency(false);
SELECT count(*) FROM pg_trigger WHERE tgname IN ('motofinai_consistency', 'motofinai_enforce_mark');
UPDATE loans_loanapplication SET status = 'completed' WHERE id = 13;
SELECT status FROM loans_loanapplication WHERE id = 13;
