-- The payment rules' flags for each payment of <from> (aliased p): the
-- payment family's "checked" rows, and what the system check's one pass over
-- every payment counts. Placeholders: <s>; <from>; <columns> and <joins>,
-- more of each for that pass (empty otherwise).
SELECT c.*,
       -- Rows with no flag set never reach the findings.
       (c.loan_missing OR c.installment_missing OR c.loan_mismatch OR c.future_date OR c.exceeds
        OR c.differs OR c.before_activation) AS flagged
  FROM (SELECT p.id, p.loan_application_id AS loan_id, p.schedule_id, p.amount, p.payment_date,
               l.activated_at, s.loan_application_id AS schedule_loan_id, s.total_amount,
               -- Each rule as a flag.
               l.id IS NULL AS loan_missing,
               s.id IS NULL AS installment_missing,
               s.loan_application_id <> p.loan_application_id AS loan_mismatch,
               p.payment_date > CURRENT_DATE AS future_date,
               p.amount > 1.10 * s.total_amount AS exceeds,
               (p.amount <> s.total_amount AND NOT p.amount > 1.10 * s.total_amount) AS differs,
               p.payment_date < l.activated_at::date AS before_activation
               @columns@
          FROM @from@ p
          LEFT JOIN @s@.loans_loanapplication l ON l.id = p.loan_application_id
          LEFT JOIN @s@.loans_paymentschedule s ON s.id = p.schedule_id
          @joins@) c
