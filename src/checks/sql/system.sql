-- The system check's shared statement, where payments' schedule_id is unique
-- (each installment has at most one payment). Every installment is joined
-- to its payment once, in the loan rules' aggregate ("inst_all"); the
-- payments are only counted per loan ("pm"), from the loan index. A loan
-- whose payments all match, to the cent, an installment of its own (counted
-- as "good" in inst_all, with their sum and dates) has no payment on which a
-- payment rule or the installment reference can fire, and its payments' sum
-- is the good ones'; the payments of the other loans ("odd", "flagged") are
-- read again through the loan index. Placeholders (written @name@ in the
-- SQL) filled in by checks/system.rs:
--   <s>      the quoted schema of the Motofinai tables
--   <inst>   loan_inst.sql over every installment, with "good"
--   <pay_set>, <payments>, <loans> in the system check: nothing, and the
--            payments' and loans' tables; for a set of loans (an
--            incremental run), "pay_set", their payments, read once, and
--            those loans
--   <joins>  the payments' other references that no index lets us check
--            apart, each LEFT JOINed
--   <counts> per such reference, its broken rows: count(*) FILTER (WHERE ...) AS nI
--   <rest>   what reads them: per count, the loans it names ("pm_loans",
--            "im_loans"), the references' findings, the loan family
--            (loan.sql over inst_all and pm_paid) and the payment family
WITH @pay_set@inst_all AS MATERIALIZED (
    @inst@
), pm AS MATERIALIZED (
    SELECT g.*,
           -- Payments naming a loan that does not exist.
           CASE WHEN g.loan_id IS NOT NULL AND l.id IS NULL THEN g.n ELSE 0 END AS lost,
           g.n - coalesce(i.good, 0) AS odd,
           -- Loans with a payment some payment rule may fire on.
           (l.id IS NULL OR g.n > coalesce(i.good, 0) OR i.good_future > 0
            OR coalesce(i.good_first < l.activated_at::date, false))::int AS flagged
      FROM (SELECT p.loan_application_id AS loan_id, count(*) AS n
                   @counts@
              FROM @payments@ p
              @joins@
             GROUP BY p.loan_application_id) g
      LEFT JOIN @loans@ l ON l.id = g.loan_id
      LEFT JOIN inst_all i ON i.loan_id = g.loan_id
), im AS (
    -- Installments naming a loan that does not exist, per loan (read only
    -- where the installments' references are checked here).
    SELECT i.loan_id, i.n AS lost
      FROM inst_all i
     WHERE NOT EXISTS (SELECT FROM @s@.loans_loanapplication l WHERE l.id = i.loan_id)
)@rest@
