-- Pay a random loan's next due installment, under enforce_consistency(); a
-- loan with nothing left to pay makes it a no-op (the soak outlives the data).
\set n random(1, :loans)
BEGIN;
WITH s AS (
    SELECT s.id, s.total_amount, s.loan_application_id
      FROM soak_loan b JOIN loans_paymentschedule s ON s.loan_application_id = b.id
     WHERE b.n = :n AND s.status = 'due'
     ORDER BY s.sequence LIMIT 1 FOR UPDATE OF s SKIP LOCKED
), p AS (
    INSERT INTO payments_payment (amount, payment_date, reference, notes, recorded_at, loan_application_id,
        recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
    SELECT total_amount, current_date, 'SOAK-' || id, '', now(), loan_application_id, 1, id, '', '', '', 'cash', false
      FROM s
    RETURNING schedule_id
)
UPDATE loans_paymentschedule t SET status = 'paid', paid_at = now() FROM p WHERE t.id = p.schedule_id;
END;
