-- loan_inst.sql's rows, each loan's totals added by one aggregate
-- (motofinai.installment_totals: checks/totals.rs) where the columns are
-- the Motofinai migrations' types (Schema::fits_totals). Placeholders as
-- loan_inst.sql's, and:
--   <payment> the payment's loan, amount and date, or NULLs where no rule
--           reads the good payments (the loan family's own statement)
--   <distinct>, <good> the same columns as loan_inst.sql's, read from "t"
--   <unpaid_ids>, <elsewhere>, <stale_fix>, <misapplied_fix> for a set of
--           loans (checks/mod.rs, PaymentOf::SharedSet): the ids of the
--           installments no payment of the set pays, per loan, and a LATERAL
--           "f" that finds those another payment pays, whose stale and
--           misapplied counts it corrects; else empty
-- The date is a parameter, computed once, not per installment.
SELECT a.loan_id, (a.t).n, (a.t).principal_sum, (a.t).owed, (a.t).unpaid, (a.t).overdue,
       (a.t).stale @stale_fix@ AS stale, (a.t).misapplied @misapplied_fix@ AS misapplied,
       (a.t).sequence_min = 1 AND (a.t).sequence_max = (a.t).n @distinct@ AS sequence_ok
       @good@
  FROM (SELECT s.loan_application_id AS loan_id,
               motofinai.installment_totals(s.status, s.due_date, s.sequence, s.principal_amount,
                   s.total_amount, s.loan_application_id, p.schedule_id IS NOT NULL, @payment@,
                   (SELECT CURRENT_DATE)) AS t
               @unpaid_ids@
          FROM @s@.loans_paymentschedule s
          @payment_of@
         WHERE s.loan_application_id @loan@
         GROUP BY s.loan_application_id) a
  @elsewhere@
