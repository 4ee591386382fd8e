-- The loan rules' per-loan aggregate of the installments, each joined to its
-- payment. Placeholders (written @name@ in the SQL) filled in by checks/mod.rs:
--   <s>     the quoted schema of the Motofinai tables
--   <sum>   the aggregate that sums amounts (sum, or motofinai.cents_sum
--           where they are whole cents: see checks/cents.rs)
--   <loan>  a condition on a loan id: "= $1", "= ANY ($1)" or "IS NOT NULL"
--   <payment_of> the join from an installment "s" to its payment "p" (whose
--           schedule_id is NULL when it has none): see checks/mod.rs, PaymentOf
--   <distinct> empty where (loan_application_id, sequence) is unique; else
--           the sums of 1..n and of its squares (no sort for a DISTINCT count
--           is needed). Once min and max hold, every square is at most n^2,
--           so the float8 sum is exact below 2^17 installments per loan, and
--           cheaper than numeric.
--   <good>  in the shared statements (system.sql), the good payments'
--           count, sum and dates (checks/mod.rs, GOOD_SQL); else empty
    SELECT s.loan_application_id AS loan_id,
           count(*) AS n,
           @sum@(s.principal_amount) AS principal_sum,
           @sum@(s.total_amount) AS owed,
           count(*) FILTER (WHERE s.status <> 'paid') AS unpaid,
           count(*) FILTER (WHERE s.status <> 'paid' AND s.due_date < CURRENT_DATE) AS overdue,
           -- An installment that has its payment is payment_not_applied, never stale.
           count(*) FILTER (WHERE s.status = 'due' AND s.due_date < CURRENT_DATE AND p.schedule_id IS NULL) AS stale,
           count(*) FILTER (WHERE (s.status = 'paid') = (p.schedule_id IS NULL)) AS misapplied,
           -- 1..n exactly: with n rows, min 1 and max n, and the sequences
           -- distinct (<distinct>).
           min(s.sequence) = 1 AND max(s.sequence) = count(*) @distinct@ AS sequence_ok
           @good@
      FROM @s@.loans_paymentschedule s
      @payment_of@
     WHERE s.loan_application_id @loan@
     GROUP BY s.loan_application_id
