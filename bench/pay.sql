-- One payment recorded the way the application does it: a loan's next due
-- installment, paid in full, marked paid; all in one transaction. The loan
-- is the first from a random one on that still has a due installment no
-- other client holds, so a run never runs out of work for a client (a
-- \gset that got no row aborted the client, and with it the run, whose tps
-- then covered its first second or so; that happened at 2,000 loans within
-- 3 s). Should every loan from there on be paid up, the transaction
-- records nothing.
\set n random(1, :loans)
BEGIN;
SELECT coalesce(max(sid), 0) AS sid, coalesce(max(amt), 0) AS amt, coalesce(max(loan), 0) AS loan
  FROM (SELECT s.id AS sid, s.total_amount AS amt, s.loan_application_id AS loan
          FROM bench_loan b JOIN loans_paymentschedule s ON s.loan_application_id = b.id
         WHERE b.n >= :n AND s.status = 'due'
         ORDER BY b.n, s.sequence LIMIT 1 FOR UPDATE OF s SKIP LOCKED) x \gset
\if :sid > 0
INSERT INTO payments_payment (amount, payment_date, reference, notes, recorded_at, loan_application_id,
    recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
VALUES (:amt, current_date, 'BENCH-' || :sid, '', now(), :loan, 1, :sid, '', '', '', 'cash', false);
UPDATE loans_paymentschedule SET status = 'paid', paid_at = now() WHERE id = :sid;
\endif
END;
