-- The check rules one by one: for every code a case that fires and a near
-- miss that must not, in a schema of their own (motofinai.tables_schema).
SELECT motofinai_tables_in('chk');
SET motofinai.tables_schema = chk;
SET search_path = chk, public;

-- Builders with sane defaults: each case changes one thing.
CREATE FUNCTION mk_motor(id bigint, vin text DEFAULT NULL, qty int DEFAULT 5, approval text DEFAULT 'approved',
                         stock bigint DEFAULT NULL) RETURNS void LANGUAGE sql AS $$
    INSERT INTO chk.inventory_stock (id, brand, model_name, year, color, quantity_available, quantity_sold, created_at,
                                     updated_at, quantity_reserved, quantity_repossessed)
    SELECT coalesce(stock, id), 'B', 'M' || id, 2025, 'red', 5, 0, now(), now(), 0, 0
     WHERE NOT EXISTS (SELECT FROM chk.inventory_stock WHERE inventory_stock.id = coalesce(stock, mk_motor.id));
    INSERT INTO chk.inventory_motor (id, type, brand, model_name, year, color, purchase_price, notes, created_at,
                                     updated_at, quantity, stock_id, approval_status, approval_notes, chassis_number)
    VALUES (id, 'scooter', 'B', 'M' || id, 2025, 'red', 1000, '', now(), now(), qty, coalesce(stock, id), approval, '',
            coalesce(vin, 'MF' || lpad(id::text, 15, '0')));
$$;
CREATE FUNCTION mk_loan(id bigint, status text DEFAULT 'active', motor bigint DEFAULT 1, amount numeric DEFAULT 1200,
                        down numeric DEFAULT 0, principal numeric DEFAULT NULL, submitter bigint DEFAULT 1,
                        approvals int DEFAULT 2, email text DEFAULT 'a@example.com')
RETURNS void LANGUAGE sql AS $$
    INSERT INTO chk.loans_loanapplication (id, applicant_first_name, applicant_last_name, applicant_email,
        applicant_phone, employment_status, employer_name, monthly_income, loan_amount, down_payment,
        principal_amount, interest_rate, monthly_payment, has_valid_id, has_proof_of_income, notes, status,
        submitted_at, approved_at, activated_at, updated_at, financing_term_id, motor_id, submitted_by_id,
        approved_by_id, second_approval_by_id)
    VALUES (id, 'Ana', 'Cruz', email, '0917', 'employed', 'X', 1000, amount, down, coalesce(principal, amount - down),
            0, 100, true, true, '', status, now(), now(),
            CASE WHEN status IN ('active', 'completed') THEN current_date - 400 END, now(), 1, motor, submitter,
            CASE WHEN approvals >= 1 THEN 1 END, CASE WHEN approvals >= 2 THEN 1 END);
$$;
-- n installments of 100.00 principal, due monthly from 300 days ago; the
-- first `paid` are paid (with a payment each unless with_payments is false).
CREATE FUNCTION mk_schedule(loan bigint, n int, paid int, with_payments boolean DEFAULT true) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO chk.loans_paymentschedule (id, sequence, due_date, principal_amount, interest_amount, total_amount,
                                           status, paid_at, created_at, loan_application_id)
    SELECT loan * 100 + k, k, current_date + 30 * k, 100.00, 0, 100.00,
           CASE WHEN k <= paid THEN 'paid' ELSE 'due' END, NULL, now(), loan
      FROM generate_series(1, n) k;
    INSERT INTO chk.payments_payment (id, amount, payment_date, reference, notes, recorded_at, loan_application_id,
        recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
    SELECT loan * 100 + k, 100.00, current_date - 50 + k, '', '', now(), loan, 1, loan * 100 + k, '', '', '', 'cash', false
      FROM generate_series(1, paid) k WHERE with_payments;
$$;
INSERT INTO chk.users_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
                            date_joined, role)
VALUES (1, '!', false, 'clerk', 'C', 'L', 'c@x', true, true, now(), 'staff'),
       (2, '!', false, 'gone', 'G', 'O', 'g@x', true, false, now(), 'staff');
SELECT mk_motor(1, qty => 1000);

-- loan: motor_missing / near miss: motor present
SELECT mk_loan(101, 'pending', motor => 999), mk_loan(102, 'pending');
SELECT * FROM check_loan_consistency(101);
SELECT * FROM check_loan_consistency(102);
-- applicant_contact_incomplete (blank after trimming) / near miss: all filled
SELECT mk_loan(103, 'pending', email => '   ');
UPDATE chk.loans_loanapplication SET applicant_phone = '' WHERE id = 103;
SELECT code, message FROM check_loan_consistency(103);
-- submitter_inactive / near miss: the same account on a completed loan
SELECT mk_loan(104, 'pending', submitter => 2), mk_loan(105, 'completed', submitter => 2, amount => 200);
SELECT mk_schedule(105, 2, 2);
SELECT code, message FROM check_loan_consistency(104);
SELECT code, message FROM check_loan_consistency(105);
-- principal_mismatch, both forms / near miss: exact
SELECT mk_loan(106, 'pending', amount => 1000, down => 100, principal => 900.01),
       mk_loan(107, 'pending', amount => 100, down => 200, principal => -100),
       mk_loan(108, 'pending', amount => 1000, down => 100, principal => 900);
SELECT code, message, details FROM check_loan_consistency(106);
SELECT code, message FROM check_loan_consistency(107);
SELECT count(*) FROM check_loan_consistency(108);
-- schedule_total_mismatch / near miss: the last installment takes the rounding
SELECT mk_loan(109, 'approved', amount => 300), mk_loan(110, 'approved', amount => 300);
SELECT mk_schedule(109, 3, 0), mk_schedule(110, 3, 0);
UPDATE chk.loans_paymentschedule SET principal_amount = 100.01 WHERE id = 10902;
UPDATE chk.loans_paymentschedule SET principal_amount = 99.99 WHERE id = 11001;
UPDATE chk.loans_paymentschedule SET principal_amount = 100.01 WHERE id = 11003;
SELECT code, message FROM check_loan_consistency(109);
SELECT count(*) FROM check_loan_consistency(110);
-- schedule_missing: active, approved twice / near miss: approved once, pending
SELECT mk_loan(111, 'active'), mk_loan(112, 'approved'), mk_loan(113, 'approved', approvals => 1);
SELECT code, message FROM check_loan_consistency(111);
SELECT code, message FROM check_loan_consistency(112);
SELECT count(*) FROM check_loan_consistency(113);
-- schedule_sequence_gap / near miss: 1..n exactly
SELECT mk_loan(114, 'approved', amount => 500), mk_schedule(114, 5, 0);
UPDATE chk.loans_paymentschedule SET sequence = sequence + 10 WHERE id IN (11402, 11404);
SELECT code, message FROM check_loan_consistency(114);
-- overpaid / near miss: paid exactly
SELECT mk_loan(115, 'active', amount => 200), mk_schedule(115, 2, 2);
UPDATE chk.payments_payment SET amount = 100.50 WHERE id = 11502;
SELECT code, message FROM check_loan_consistency(115);
-- completed_not_paid: unpaid installment; no installments / near miss: all paid
SELECT mk_loan(116, 'completed', amount => 200), mk_schedule(116, 2, 1);
SELECT mk_loan(117, 'completed', amount => 200);
SELECT mk_loan(118, 'completed', amount => 200), mk_schedule(118, 2, 2);
SELECT code, message FROM check_loan_consistency(116);
SELECT code, message FROM check_loan_consistency(117);
SELECT count(*) FROM check_loan_consistency(118);
-- paid_not_completed / near miss: one installment left
SELECT mk_loan(119, 'active', amount => 200), mk_schedule(119, 2, 2);
SELECT mk_loan(120, 'active', amount => 200), mk_schedule(120, 2, 1);
SELECT code, message FROM check_loan_consistency(119);
SELECT count(*) FROM check_loan_consistency(120);
-- overdue and overdue_status_stale / near miss: due today, or paid in the past
SELECT mk_loan(121, 'active', amount => 400), mk_schedule(121, 4, 1);
UPDATE chk.loans_paymentschedule SET due_date = current_date - 40 WHERE id = 12101;
UPDATE chk.loans_paymentschedule SET due_date = current_date - 10, status = 'overdue' WHERE id = 12102;
UPDATE chk.loans_paymentschedule SET due_date = current_date - 1 WHERE id = 12103;
UPDATE chk.loans_paymentschedule SET due_date = current_date WHERE id = 12104;
SELECT code, message, details FROM check_loan_consistency(121);
-- near miss: a past-due installment still due whose payment was recorded late
-- is payment_not_applied, never overdue_status_stale
INSERT INTO chk.payments_payment (id, amount, payment_date, reference, notes, recorded_at, loan_application_id,
    recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
VALUES (12103, 100, current_date, '', '', now(), 121, 1, 12103, '', '', '', 'cash', false);
SELECT severity, code, entity, entity_id, message FROM check_loan_consistency(121);
DELETE FROM chk.payments_payment WHERE id = 12103;
-- Where payments.schedule_id is not unique, an installment with two payments
-- is still one installment (no sequence gap, no schedule total mismatch).
BEGIN;
ALTER TABLE chk.payments_payment DROP CONSTRAINT payments_payment_schedule_id_key;
INSERT INTO chk.payments_payment (id, amount, payment_date, reference, notes, recorded_at, loan_application_id,
    recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
VALUES (12103, 100, current_date, '', '', now(), 121, 1, 12103, '', '', '', 'cash', false),
       (12193, 100, current_date, '', '', now(), 121, 1, 12103, '', '', '', 'cash', false);
SELECT severity, code, entity, entity_id, message FROM check_loan_consistency(121);
ROLLBACK;
-- schedule_paid_without_payment and payment_not_applied
SELECT mk_loan(122, 'active', amount => 300), mk_schedule(122, 3, 1, with_payments => false);
INSERT INTO chk.payments_payment (id, amount, payment_date, reference, notes, recorded_at, loan_application_id,
    recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
VALUES (12202, 100, current_date, '', '', now(), 122, 1, 12202, '', '', '', 'cash', false);
SELECT severity, code, entity, entity_id, message FROM check_loan_consistency(122);
-- unapproved_motor_financed / near miss: the same motor on a pending loan
SELECT mk_motor(2, approval => 'rejected'), mk_loan(123, 'active', motor => 2, amount => 100), mk_loan(124, 'pending', motor => 2);
SELECT mk_schedule(123, 1, 0);
SELECT code, message FROM check_loan_consistency(123);
SELECT count(*) FROM check_loan_consistency(124);
-- loan_not_found never raises
SELECT * FROM check_loan_consistency(-1);

-- payment: loan_missing, installment_missing, schedule_loan_mismatch
SELECT mk_loan(201, 'active', amount => 300), mk_schedule(201, 3, 2);
SELECT mk_loan(202, 'active', amount => 300), mk_schedule(202, 3, 0);
UPDATE chk.payments_payment SET loan_application_id = 9999 WHERE id = 20101;
UPDATE chk.payments_payment SET schedule_id = 8888 WHERE id = 20102;
SELECT * FROM check_payment_consistency(20101);
SELECT * FROM check_payment_consistency(20102);
SELECT mk_schedule(203, 0, 0);
INSERT INTO chk.payments_payment (id, amount, payment_date, reference, notes, recorded_at, loan_application_id,
    recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
VALUES (20301, 100, current_date, '', '', now(), 201, 1, 20201, '', '', '', 'cash', false);
SELECT code, message FROM check_payment_consistency(20301);
-- future_payment_date / near miss: today
UPDATE chk.payments_payment SET payment_date = current_date + 1 WHERE id = 20301;
SELECT code, message FROM check_payment_consistency(20301) WHERE code = 'future_payment_date';
UPDATE chk.payments_payment SET payment_date = current_date WHERE id = 20301;
SELECT count(*) FROM check_payment_consistency(20301) WHERE code = 'future_payment_date';
-- amount_exceeds_schedule (over 10%) and amount_differs_from_schedule; near miss: exactly 10% over
SELECT mk_loan(204, 'active', amount => 1000), mk_schedule(204, 10, 4);
UPDATE chk.payments_payment SET amount = 110.01 WHERE id = 20401;
UPDATE chk.payments_payment SET amount = 110.00 WHERE id = 20402;
UPDATE chk.payments_payment SET amount = 99.99 WHERE id = 20403;
SELECT entity_id, code, message FROM check_payment_consistency() WHERE entity_id BETWEEN 20401 AND 20404 ORDER BY 1;
-- possible_duplicate: the same non-blank reference, (bank_name, bank_reference)
-- or (bank_name, check_number) / near misses: same loan, amount and date alone
-- (two equal installments paid at once), blank references, the same bank
-- reference at another bank, the same cheque number with no bank
UPDATE chk.payments_payment SET payment_date = current_date - 45 WHERE id = 20404;
UPDATE chk.payments_payment SET amount = 100, payment_date = current_date - 45 WHERE id = 20403;
UPDATE chk.payments_payment SET reference = 'OR-77' WHERE id IN (11501, 11901);
UPDATE chk.payments_payment SET bank_name = 'BDO', bank_reference = 'TRX-1' WHERE id IN (20101, 20102);
UPDATE chk.payments_payment SET bank_name = 'BPI', bank_reference = 'TRX-1' WHERE id = 11502;
UPDATE chk.payments_payment SET bank_name = 'BPI', check_number = 'CHK-9' WHERE id IN (10501, 10502);
UPDATE chk.payments_payment SET check_number = 'CHK-5' WHERE id IN (11601, 12001);
SELECT entity_id, code, message FROM check_payment_consistency() WHERE code = 'possible_duplicate' ORDER BY 1;
SELECT count(*) AS not_duplicates FROM check_payment_consistency() WHERE code = 'possible_duplicate'
   AND entity_id IN (20403, 20404, 11502, 11601, 12001);
SELECT code, message FROM check_payment_consistency(10502) WHERE code = 'possible_duplicate';
SELECT code, message FROM check_payment_consistency(20102) WHERE code = 'possible_duplicate';
-- With an index leading with the reference (create_check_indexes), the
-- references are paired through it (dup_ref_index.sql) instead of a
-- self-join: the same rows in the payment family and the system check, for
-- a reference three payments share too (near miss: the same with a trailing
-- space).
BEGIN;
SELECT mk_loan(205, 'active', amount => 400), mk_schedule(205, 4, 4);
UPDATE chk.payments_payment SET reference = 'OR-78' WHERE id IN (20501, 20502, 20503);
UPDATE chk.payments_payment SET reference = 'OR-78 ' WHERE id = 20504;
CREATE TEMP TABLE dup_joined ON COMMIT DROP AS
SELECT entity_id, message, details FROM check_payment_consistency() WHERE code = 'possible_duplicate';
SELECT entity_id, message FROM dup_joined WHERE entity_id BETWEEN 20501 AND 20504 ORDER BY 1;
SELECT motofinai.create_check_indexes();
SELECT count(*) AS differences FROM (
    (SELECT * FROM dup_joined EXCEPT ALL
     SELECT entity_id, message, details FROM check_payment_consistency() WHERE code = 'possible_duplicate')
    UNION ALL
    (SELECT entity_id, message, details FROM check_payment_consistency() WHERE code = 'possible_duplicate'
     EXCEPT ALL SELECT * FROM dup_joined)
    UNION ALL
    (SELECT * FROM dup_joined EXCEPT ALL
     SELECT entity_id, message, details FROM check_system_consistency() WHERE code = 'possible_duplicate')
    UNION ALL
    (SELECT entity_id, message, details FROM check_system_consistency() WHERE code = 'possible_duplicate'
     EXCEPT ALL SELECT * FROM dup_joined)) d;
ROLLBACK;
-- payment_before_activation / near miss: on the activation day
UPDATE chk.payments_payment SET payment_date = current_date - 401 WHERE id = 11801;
UPDATE chk.payments_payment SET payment_date = current_date - 400 WHERE id = 11802;
SELECT entity_id, code, message FROM check_payment_consistency() WHERE code = 'payment_before_activation';
SELECT * FROM check_payment_consistency(0);

-- inventory: duplicate_vin (trimmed, any case), invalid_vin / near miss: blank VIN
SELECT mk_motor(301, vin => 'JH2PC35051M200001'), mk_motor(302, vin => ' jh2pc35051m200001 '),
       mk_motor(303, vin => 'JH2PC35O51M200001'), mk_motor(304, vin => 'SHORT'), mk_motor(305, vin => '');
SELECT * FROM check_inventory_consistency(301);
SELECT code, message FROM check_inventory_consistency(302);
SELECT code, message FROM check_inventory_consistency(303);
SELECT code, message FROM check_inventory_consistency(304);
SELECT count(*) FROM check_inventory_consistency(305);
-- over_assigned: open loans over quantity / near miss: equal, completed loans do not count
SELECT mk_motor(306, qty => 1), mk_motor(307, qty => 1);
SELECT mk_loan(306, 'pending', motor => 306), mk_loan(307, 'approved', motor => 306, approvals => 1),
       mk_loan(308, 'pending', motor => 307), mk_loan(309, 'completed', motor => 307);
SELECT mk_schedule(309, 1, 1);
SELECT code, message FROM check_inventory_consistency(306);
SELECT code, message FROM check_inventory_consistency(307);
-- unapproved_motor_financed on the motor
SELECT code, message FROM check_inventory_consistency(2);
-- stock_sold_mismatch: two motors of one batch, two activated loans, one counted sold
SELECT mk_motor(310, stock => 310), mk_motor(311, stock => 310);
UPDATE chk.inventory_stock SET quantity_sold = 1 WHERE id = 310;
SELECT mk_loan(310, 'active', motor => 310), mk_loan(311, 'completed', motor => 311);
SELECT mk_schedule(310, 1, 0), mk_schedule(311, 1, 1);
SELECT * FROM check_inventory_consistency(311);
UPDATE chk.inventory_stock SET quantity_sold = 1, quantity_repossessed = 1 WHERE id = 310;
SELECT count(*) FROM check_inventory_consistency(311);
SELECT * FROM check_inventory_consistency(12345);

-- The report, in the seed's format (messages only, errors first).
SELECT jsonb_pretty(consistency_report('loan', 121));
SELECT consistency_report('loan', 109);
SELECT consistency_report('loan', 102);
SELECT consistency_report('payment', 0);

-- Quick check: orphaned payments, schedule_missing, duplicate VINs, versioning triggers.
SELECT severity, code, entity, entity_id, message FROM check_quick_consistency();

-- System: orphans per relation, foreign keys from the catalog, and their state.
ALTER TABLE chk.payments_payment ADD CONSTRAINT pay_loan_fk FOREIGN KEY (loan_application_id)
    REFERENCES chk.loans_loanapplication (id) NOT VALID;
ALTER TABLE chk.loans_loanapplication ADD CONSTRAINT loan_motor_fk FOREIGN KEY (motor_id)
    REFERENCES chk.inventory_motor (id) NOT VALID;
-- The payments' users: the recorder's column has its index (its values are
-- read by a skip scan), the reconciler's has none (every payment is joined).
UPDATE chk.payments_payment SET recorded_by_id = 998, reconciled_by_id = 999
 WHERE id = (SELECT min(id) FROM chk.payments_payment);
ALTER TABLE chk.payments_payment ADD CONSTRAINT pay_recorder_fk FOREIGN KEY (recorded_by_id)
    REFERENCES chk.users_user (id) NOT VALID;
ALTER TABLE chk.payments_payment ADD CONSTRAINT pay_reconciler_fk FOREIGN KEY (reconciled_by_id)
    REFERENCES chk.users_user (id) NOT VALID;
DO $$ BEGIN
    EXECUTE (SELECT format('DROP INDEX chk.%I', indexrelid::regclass::text) FROM pg_index i
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = 'chk.payments_payment'::regclass AND a.attname = 'reconciled_by_id');
END $$;
SELECT severity, code, message, details FROM check_system_consistency()
 WHERE code IN ('orphaned_rows', 'foreign_key_violation', 'foreign_key_not_validated') ORDER BY code, message;
-- Duplicate installment sequences are looked for only when no unique index rules them out.
SELECT count(*) FROM check_system_consistency() WHERE code = 'duplicate_installment_sequence';
ALTER TABLE chk.loans_paymentschedule DROP CONSTRAINT loans_paymentschedule_loan_application_id_sequence_key;
UPDATE chk.loans_paymentschedule SET sequence = 1 WHERE id = 12102;
SELECT severity, code, entity, entity_id, message FROM check_system_consistency()
 WHERE code = 'duplicate_installment_sequence';
-- Every loan, payment and inventory finding is in the system check too.
SELECT count(*) AS missing_from_system FROM (
    SELECT * FROM check_loan_consistency() UNION ALL SELECT * FROM check_payment_consistency()
    UNION ALL SELECT * FROM check_inventory_consistency()
    EXCEPT SELECT * FROM check_system_consistency()) x;
-- versioning_disabled
SELECT motofinai.enable_versioning('chk.inventory_stock', create_index => false);
ALTER TABLE chk.inventory_stock DISABLE TRIGGER motofinai_versioning;
SELECT severity, code, message FROM check_quick_consistency() WHERE code = 'versioning_disabled';
ALTER TABLE chk.inventory_stock ENABLE TRIGGER motofinai_versioning;
SELECT count(*) FROM check_quick_consistency() WHERE code = 'versioning_disabled';

-- An incremental run's check of a set of loans (check_loans) gives the loan
-- family's rows and the payment family's rows of their payments: from one
-- shared statement where payments.schedule_id is unique, from the two
-- families' statements where it is not. Every loan any row names.
CREATE TEMP VIEW families_of_loans AS
SELECT * FROM check_loan_consistency()
UNION ALL
SELECT f.* FROM check_payment_consistency() f JOIN chk.payments_payment p ON p.id = f.entity_id
 WHERE p.loan_application_id IS NOT NULL;
CREATE TEMP VIEW loans_named AS
SELECT id FROM chk.loans_loanapplication UNION SELECT loan_application_id FROM chk.loans_paymentschedule
UNION SELECT loan_application_id FROM chk.payments_payment WHERE loan_application_id IS NOT NULL;
CREATE TEMP VIEW loans_checked AS
SELECT * FROM motofinai.check_loans(ARRAY(TABLE loans_named));
SELECT count(*) AS rows, (SELECT count(*) FROM ((TABLE loans_checked EXCEPT ALL TABLE families_of_loans)
                                                UNION ALL (TABLE families_of_loans EXCEPT ALL TABLE loans_checked)) d)
       AS differences
  FROM loans_checked;
-- Past 10,000 loans the statement lets the planner see the set (hash joins
-- pay there), where below it hides it: the same rows. Ids that name no loan
-- add none.
CREATE TEMP VIEW loans_checked_in_view AS
SELECT * FROM motofinai.check_loans(ARRAY(TABLE loans_named) || ARRAY(SELECT -g::bigint FROM generate_series(1, 10001) g));
SELECT count(*) AS rows, (SELECT count(*) FROM ((TABLE loans_checked EXCEPT ALL TABLE loans_checked_in_view)
                                                UNION ALL (TABLE loans_checked_in_view EXCEPT ALL TABLE loans_checked)) d)
       AS differences
  FROM loans_checked_in_view;
-- Each loan alone: an installment paid by another loan's payment is then
-- paid by a payment the statement did not read with the loan's own.
CREATE TEMP VIEW each_loan_checked AS
SELECT f.* FROM loans_named l, motofinai.check_loans(ARRAY[l.id]) f;
SELECT count(*) AS rows, (SELECT count(*) FROM ((TABLE each_loan_checked EXCEPT ALL TABLE families_of_loans)
                                                UNION ALL (TABLE families_of_loans EXCEPT ALL TABLE each_loan_checked)) d)
       AS differences
  FROM each_loan_checked;
BEGIN;
ALTER TABLE chk.payments_payment DROP CONSTRAINT payments_payment_schedule_id_key;
SELECT count(*) AS rows, (SELECT count(*) FROM ((TABLE loans_checked EXCEPT ALL TABLE families_of_loans)
                                                UNION ALL (TABLE families_of_loans EXCEPT ALL TABLE loans_checked)) d)
       AS differences
  FROM loans_checked;
ROLLBACK;

-- Bad input: clear errors, never a crash.
SELECT show_error($$SELECT * FROM check_loan_consistency(NULL)$$);
SELECT show_error($$SELECT consistency_report('everything')$$);
SELECT show_error($$SELECT consistency_report(NULL)$$);
SELECT show_error($$SELECT consistency_report('system', 5)$$);
SET motofinai.tables_schema = no_such_schema;
SELECT show_error($$SELECT * FROM check_loan_consistency(1)$$);
SET motofinai.tables_schema = chk;
ALTER TABLE chk.users_user RENAME TO users_user_old;
SELECT show_error($$SELECT * FROM check_loan_consistency(1)$$);
SELECT count(*) FROM check_payment_consistency(20301);
ALTER TABLE chk.users_user_old RENAME TO users_user;
-- A caller without SELECT on the tables gets PostgreSQL's own error.
CREATE ROLE regress_mfc_nobody;
GRANT USAGE ON SCHEMA chk, motofinai TO regress_mfc_nobody;
SET ROLE regress_mfc_nobody;
SELECT show_error($$SELECT * FROM check_loan_consistency(101)$$);
RESET ROLE;
DROP OWNED BY regress_mfc_nobody;
DROP ROLE regress_mfc_nobody;

-- Fixes. A repair's consequence is repaired in the same pass (the late
-- payment applied makes loan 501 fully paid, so it is completed); a loan
-- whose repairs cannot hold (503 stays overpaid, which enforcement would
-- reject at COMMIT) is rolled back alone, with a note; the dry run shows
-- exactly what applying does.
SELECT mk_loan(501, 'active', amount => 300), mk_schedule(501, 3, 2);
UPDATE chk.loans_paymentschedule SET due_date = current_date - 5 WHERE id = 50103;
SELECT mk_loan(502, 'active', amount => 300), mk_schedule(502, 3, 1);
UPDATE chk.loans_paymentschedule SET due_date = current_date - 3 WHERE id = 50202;
SELECT mk_loan(503, 'active', amount => 300), mk_schedule(503, 3, 2);
INSERT INTO chk.payments_payment (id, amount, payment_date, reference, notes, recorded_at, loan_application_id,
    recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
VALUES (50103, 100, current_date - 1, '', '', now(), 501, 1, 50103, '', '', '', 'cash', false),
       (50303, 150, current_date - 1, '', '', now(), 503, 1, 50303, '', '', '', 'cash', false);
SELECT entity_id, code, entity, message FROM check_loan_consistency()
 WHERE coalesce((details ->> 'loan_id')::bigint, entity_id) BETWEEN 501 AND 503 ORDER BY 1, 2;
SELECT motofinai.enforce_consistency();
BEGIN;
CREATE TEMP TABLE planned AS SELECT * FROM motofinai.fix_consistency('system');
CREATE TEMP TABLE applied AS SELECT * FROM motofinai.fix_consistency('system', NULL, true);
SELECT code, entity, entity_id, changes -> 'status' AS status, applied, note FROM applied
 WHERE entity_id BETWEEN 501 AND 503 OR entity_id BETWEEN 50100 AND 50399 ORDER BY entity_id;
SELECT count(*) AS rows, count(*) FILTER (WHERE applied) AS applied,
       (SELECT count(*) FROM (SELECT code, entity, entity_id, changes, summary, note FROM planned
                              EXCEPT ALL SELECT code, entity, entity_id, changes, summary, note FROM applied) d)
       + (SELECT count(*) FROM (SELECT code, entity, entity_id, changes, summary, note FROM applied
                                EXCEPT ALL SELECT code, entity, entity_id, changes, summary, note FROM planned) d)
       AS differences_from_plan
  FROM applied;
COMMIT;
SELECT entity_id, code, entity FROM check_loan_consistency()
 WHERE coalesce((details ->> 'loan_id')::bigint, entity_id) BETWEEN 501 AND 503 ORDER BY 1, 2;
SELECT count(*) AS left_to_fix FROM motofinai.fix_consistency('system') WHERE note IS NULL;
SELECT motofinai.enforce_consistency(false);
-- Without enforcement, 503's repair holds: overpaid is not what it repairs.
SELECT code, entity_id, changes -> 'status' AS status, applied, note FROM motofinai.fix_consistency('loan', 503, true);
-- A dry run's trial updates are rolled back, so conflict_stats does not count
-- them; applying does.
SELECT mk_loan(504, 'active', amount => 300), mk_schedule(504, 3, 3);
SELECT motofinai.enable_versioning('chk.loans_loanapplication', create_index => false);
SELECT motofinai.conflict_stats_reset();
SELECT code, applied FROM motofinai.fix_consistency('loan', 504);
SELECT coalesce(sum(updates_checked), 0) AS counted_after_dry_run FROM motofinai.conflict_stats
 WHERE table_name = 'chk.loans_loanapplication'::regclass;
SELECT code, applied FROM motofinai.fix_consistency('loan', 504, true);
SELECT coalesce(sum(updates_checked), 0) AS counted_after_apply FROM motofinai.conflict_stats
 WHERE table_name = 'chk.loans_loanapplication'::regclass;
SELECT motofinai.disable_versioning('chk.loans_loanapplication');
-- Errors that are not about one loan's data are raised, not noted.
CREATE ROLE regress_mfc_reader;
GRANT USAGE ON SCHEMA chk, motofinai TO regress_mfc_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA chk TO regress_mfc_reader;
UPDATE chk.loans_paymentschedule SET status = 'due' WHERE id = 50202;
SET ROLE regress_mfc_reader;
SELECT split_part(show_error($$SELECT * FROM motofinai.fix_consistency('loan', 502, true)$$), E'\n', 1) AS error;
RESET ROLE;
DROP OWNED BY regress_mfc_reader;
DROP ROLE regress_mfc_reader;

-- Marked as they are: read-only and parallel safe, so they run inside parallel plans and on a standby.
SELECT proname, provolatile, proparallel, prosecdef, proconfig FROM pg_proc
 WHERE pronamespace = 'motofinai'::regnamespace AND proname LIKE 'check%' ORDER BY proname, pronargs;
SET force_parallel_mode = on;
SELECT count(*) FROM check_loan_consistency();
BEGIN TRANSACTION READ ONLY;
SELECT count(*) FROM check_system_consistency();
COMMIT;
RESET force_parallel_mode;
RESET motofinai.tables_schema;
RESET search_path;
