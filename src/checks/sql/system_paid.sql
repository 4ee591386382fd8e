-- loan.sql's <paid> in the system check: the per-loan counts of system.sql's
-- "pm", and for the payments made on another loan's installment, that
-- installment counted for its own loan (looked up through the indexes).
SELECT u.loan_id, sum(u.paid) AS paid, sum(u.n) AS n, sum(u.on_paid) AS on_paid,
       sum(u.on_unpaid) AS on_unpaid, sum(u.on_due_past) AS on_due_past
  FROM (SELECT loan_id, paid, n, on_paid, on_unpaid, on_due_past FROM pm
        UNION ALL
        SELECT s.loan_application_id, 0.00, 0, (s.status = 'paid')::int, (s.status <> 'paid')::int,
               (s.status = 'due' AND s.due_date < CURRENT_DATE)::int
          FROM @s@.payments_payment p
          JOIN @s@.loans_paymentschedule s ON s.id = p.schedule_id
         WHERE @of_loans(mismatched)@ AND s.loan_application_id IS DISTINCT FROM p.loan_application_id) u
 GROUP BY u.loan_id
