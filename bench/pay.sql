-- One payment recorded the way the application does it: the loan's next due
-- installment, paid in full, marked paid; all in one transaction.
\set n random(1, :loans)
BEGIN;
SELECT s.id AS sid, s.total_amount AS amt, s.loan_application_id AS loan
  FROM bench_loan b JOIN loans_paymentschedule s ON s.loan_application_id = b.id
 WHERE b.n = :n AND s.status = 'due'
 ORDER BY s.sequence LIMIT 1 FOR UPDATE OF s SKIP LOCKED \gset
INSERT INTO payments_payment (amount, payment_date, reference, notes, recorded_at, loan_application_id,
    recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
VALUES (:amt, current_date, 'BENCH-' || :sid, '', now(), :loan, 1, :sid, '', '', '', 'cash', false);
UPDATE loans_paymentschedule SET status = 'paid', paid_at = now() WHERE id = :sid;
END;
