-- The system check's one pass over every payment. Each payment is joined
-- once to its installment, its loan and whatever else its foreign keys name,
-- and counted per loan ("pm", computed in parallel). From those counts come
-- the payments' broken references, the loan rules' payment sums, and the few
-- loans whose payments break a payment rule: the payment family then reads
-- only those loans' payments, through the indexes. Only where payments'
-- schedule_id is unique: each installment has at most one payment.
-- Placeholders (written @name@ in the SQL) filled in by checks/mod.rs:
--   <s>       the quoted schema of the Motofinai tables
--   <checked> payment_checked.sql over every payment, with the installment's
--             status and due date, and each reference's broken flag (bI)
--   <counts>  per reference, its broken rows: count(*) FILTER (WHERE c.bI) AS nI
--   <rest>    what reads "pm": the references' findings, the loan family
--             (loan.sql, its sums from "pm") and the payment family
WITH pm AS MATERIALIZED (
    SELECT c.loan_id, count(*) AS n, sum(c.amount) AS paid,
           -- Installments that have a payment, by status; a payment on
           -- another loan's installment (flagged) is counted apart.
           count(*) FILTER (WHERE c.schedule_loan_id = c.loan_id AND c.schedule_status = 'paid') AS on_paid,
           count(*) FILTER (WHERE c.schedule_loan_id = c.loan_id AND c.schedule_status <> 'paid') AS on_unpaid,
           count(*) FILTER (WHERE c.schedule_loan_id = c.loan_id AND c.schedule_status = 'due'
                              AND c.schedule_due_date < CURRENT_DATE) AS on_due_past,
           count(*) FILTER (WHERE c.schedule_loan_id IS DISTINCT FROM c.loan_id
                              AND c.schedule_loan_id IS NOT NULL) AS mismatched,
           count(*) FILTER (WHERE c.flagged) AS flagged
           @counts@
      FROM (@checked@) c
     GROUP BY c.loan_id
)@rest@
