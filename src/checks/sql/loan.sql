-- Loan family. Placeholders (written @name@ in the SQL) filled in by checks/mod.rs:
--   <s>     the quoted schema of the Motofinai tables
--   <loan>  a condition on a loan id: "= $1" for one loan, "IS NOT NULL" for all
--   <inst>  per loan, its installments' counts and sums (loan_inst.sql, or in
--           the system check its shared result)
--   <paid>  per loan: the payments' sum (paid) and count (n)
--   <paid_else>, <n_else> the sum and count of a loan <paid> has no row for
--           (NULL: none; in the shared statements, <paid> has only the
--           loans whose payments are not all good, the others' are <inst>'s)
-- One pass over installments joined to their payments and one over payments,
-- aggregated per loan and hash-joined to the loans. The few installments
-- that are paid without a payment or have one but are not paid are counted
-- there and listed only for their loans.
WITH inst AS (
    @inst@
), paid AS (
    @paid@
), loan AS (
    -- A loan, or a missing loan that installments name (found false): only
    -- their own per-installment findings are reported for those.
    SELECT coalesce(l.id, i.loan_id) AS id, l.id IS NOT NULL AS found, l.status, l.motor_id, l.loan_amount, l.down_payment, l.principal_amount,
           l.applicant_first_name, l.applicant_last_name, l.applicant_email, l.applicant_phone,
           l.approved_by_id, l.second_approval_by_id,
           m.id AS motor_found, m.approval_status AS motor_status,
           u.username, u.is_active AS submitter_active,
           coalesce(i.n, 0) AS n, coalesce(i.principal_sum, 0.00) AS principal_sum,
           coalesce(i.owed, 0.00) AS owed, coalesce(i.unpaid, 0) AS unpaid,
           coalesce(i.overdue, 0) AS overdue, coalesce(i.stale, 0) AS stale,
           coalesce(i.misapplied, 0) AS misapplied,
           coalesce(i.sequence_ok, true) AS sequence_ok,
           coalesce(y.paid, @paid_else@, 0.00) AS paid, coalesce(y.n, @n_else@, 0) AS payments
      FROM (SELECT * FROM @s@.loans_loanapplication WHERE id @loan@) l
      FULL JOIN inst i ON i.loan_id = l.id
      LEFT JOIN paid y ON y.loan_id = coalesce(l.id, i.loan_id)
      LEFT JOIN @s@.inventory_motor m ON m.id = l.motor_id
      LEFT JOIN @s@.users_user u ON u.id = l.submitted_by_id
), flagged AS (
    -- Each rule as a flag; rows with no flag set never reach the findings.
    SELECT l.*,
           l.motor_found IS NULL AS motor_missing,
           -- Blank: only spaces, if any. Only a value that sorts, byte by byte,
           -- below '!' can be: most fail that test, without btrim's copy
           -- (about 90 ms over 100,000 loans).
           ((l.applicant_first_name COLLATE "C" < '!' AND btrim(l.applicant_first_name) = '')
               OR (l.applicant_last_name COLLATE "C" < '!' AND btrim(l.applicant_last_name) = '')
               OR (l.applicant_email COLLATE "C" < '!' AND btrim(l.applicant_email) = '')
               OR (l.applicant_phone COLLATE "C" < '!' AND btrim(l.applicant_phone) = '')) AS contact_incomplete,
           (l.status <> 'completed' AND NOT l.submitter_active) AS submitter_inactive,
           (l.principal_amount <> l.loan_amount - l.down_payment OR l.down_payment > l.loan_amount) AS principal_mismatch,
           (l.n > 0 AND l.principal_sum <> l.principal_amount) AS total_mismatch,
           (l.n = 0 AND (l.status = 'active' OR (l.status = 'approved'
               AND l.approved_by_id IS NOT NULL AND l.second_approval_by_id IS NOT NULL))) AS schedule_missing,
           NOT l.sequence_ok AS sequence_gap,
           l.paid > l.owed AS overpaid,
           (l.status = 'completed' AND (l.unpaid > 0 OR l.paid < l.owed OR l.n = 0)) AS completed_not_paid,
           (l.status = 'active' AND l.n > 0 AND l.unpaid = 0 AND l.paid >= l.owed) AS paid_not_completed,
           l.overdue > 0 AS is_overdue,
           l.stale > 0 AS is_stale,
           (l.status IN ('active', 'completed') AND l.motor_status <> 'approved') AS unapproved_motor
      FROM loan l
), finding AS (
    -- An installment's row (x, listed for its loan) takes the place of the
    -- loan's: a second reference to the loans would materialize them, and a
    -- materialized CTE is never scanned in parallel.
    -- Sorted by loan (an installment's row too) without reading "details",
    -- which the planner would compute twice, its subqueries included.
    SELECT l.id AS loan_id,
           CASE WHEN x.id IS NULL THEN f.ord WHEN x.status = 'paid' THEN 13 ELSE 14 END AS ord,
           f.severity,
           CASE WHEN x.id IS NULL THEN f.code
                WHEN x.status = 'paid' THEN 'schedule_paid_without_payment'
                ELSE 'payment_not_applied' END AS code,
           CASE WHEN x.id IS NULL THEN 'loan' ELSE 'schedule' END AS entity,
           coalesce(x.id, l.id) AS entity_id,
           CASE f.code
             WHEN 'misapplied' THEN CASE WHEN x.status = 'paid'
                 THEN format('Installment %s is marked paid but has no payment', x.sequence)
                 ELSE format('Installment %s has a payment but is not marked paid', x.sequence) END
             WHEN 'motor_missing' THEN format('Loan references non-existent motor (ID: %s)', l.motor_id)
             WHEN 'applicant_contact_incomplete' THEN 'Loan applicant record is incomplete: ' || array_to_string(ARRAY[
                  CASE WHEN btrim(l.applicant_first_name) = '' THEN 'first name' END,
                  CASE WHEN btrim(l.applicant_last_name) = '' THEN 'last name' END,
                  CASE WHEN btrim(l.applicant_email) = '' THEN 'email' END,
                  CASE WHEN btrim(l.applicant_phone) = '' THEN 'phone' END], ', ')
             WHEN 'submitter_inactive'
               THEN format('Loan applicant is inactive (submitting account %s is deactivated)', l.username)
             WHEN 'principal_mismatch'
               THEN format('Principal (%s) does not equal loan amount (%s) minus down payment (%s)',
                           l.principal_amount, l.loan_amount, l.down_payment)
             WHEN 'schedule_total_mismatch'
               THEN format('Payment schedule total (%s) does not match loan amount (%s)',
                           l.principal_sum, l.principal_amount)
             WHEN 'schedule_missing' THEN 'Loan has no payment schedule'
             WHEN 'schedule_sequence_gap' THEN 'Payment schedule sequence has gaps: ' || (
                  SELECT string_agg(g::text, ', ' ORDER BY g)
                    FROM generate_series(1, l.n) g
                   WHERE NOT EXISTS (SELECT FROM @s@.loans_paymentschedule s
                                      WHERE s.loan_application_id = l.id AND s.sequence = g))
             WHEN 'overpaid' THEN format('Total paid (%s) exceeds loan amount (%s)', l.paid, l.owed)
             WHEN 'completed_not_paid'
               THEN format('Loan marked completed but not fully paid (paid: %s, owed: %s)', l.paid, l.owed)
             WHEN 'paid_not_completed' THEN 'Loan is fully paid but still active'
             WHEN 'overdue' THEN format('%s payment(s) are overdue', l.overdue)
             WHEN 'overdue_status_stale' THEN format('%s installment(s) past due are still marked due', l.stale)
             WHEN 'unapproved_motor_financed'
               THEN format('Loan finances motor %s which is %s', l.motor_id, l.motor_status)
           END AS message,
           CASE f.code
             WHEN 'misapplied'
               THEN jsonb_build_object('loan_id', l.id, 'sequence', x.sequence, 'status', x.status,
                                       'payment_id', x.payment_id, 'payment_date', x.payment_date)
             WHEN 'motor_missing' THEN jsonb_build_object('motor_id', l.motor_id)
             WHEN 'applicant_contact_incomplete'
               THEN jsonb_build_object('first_name', l.applicant_first_name, 'last_name', l.applicant_last_name,
                                       'email', l.applicant_email, 'phone', l.applicant_phone)
             WHEN 'submitter_inactive' THEN jsonb_build_object('username', l.username)
             WHEN 'principal_mismatch'
               THEN jsonb_build_object('principal_amount', l.principal_amount, 'loan_amount', l.loan_amount,
                                       'down_payment', l.down_payment, 'expected', l.loan_amount - l.down_payment)
             WHEN 'schedule_total_mismatch'
               THEN jsonb_build_object('schedule_total', l.principal_sum, 'principal_amount', l.principal_amount,
                                       'installments', l.n)
             WHEN 'schedule_missing' THEN jsonb_build_object('status', l.status)
             WHEN 'schedule_sequence_gap' THEN jsonb_build_object('installments', l.n)
             WHEN 'overpaid' THEN jsonb_build_object('paid', l.paid, 'owed', l.owed, 'payments', l.payments)
             WHEN 'completed_not_paid'
               THEN jsonb_build_object('paid', l.paid, 'owed', l.owed, 'unpaid_installments', l.unpaid,
                                       'installments', l.n)
             WHEN 'paid_not_completed' THEN jsonb_build_object('paid', l.paid, 'owed', l.owed)
             -- The ids only for the loans that have some: an ordered array_agg
             -- in the scan above would rule out a parallel hash aggregate.
             WHEN 'overdue' THEN jsonb_build_object('count', l.overdue, 'installment_ids', (
                  SELECT jsonb_agg(s.id ORDER BY s.sequence) FROM @s@.loans_paymentschedule s
                   WHERE s.loan_application_id = l.id AND s.status <> 'paid' AND s.due_date < CURRENT_DATE))
             WHEN 'overdue_status_stale' THEN jsonb_build_object('count', l.stale, 'installment_ids', (
                  SELECT jsonb_agg(s.id ORDER BY s.sequence) FROM @s@.loans_paymentschedule s
                   WHERE s.loan_application_id = l.id AND s.status = 'due' AND s.due_date < CURRENT_DATE
                     AND NOT EXISTS (SELECT FROM @s@.payments_payment p WHERE p.schedule_id = s.id)))
             WHEN 'unapproved_motor_financed'
               THEN jsonb_build_object('motor_id', l.motor_id, 'approval_status', l.motor_status)
           END AS details
      -- Planned apart (OFFSET 0): the rules' filter first, then a row per
      -- rule that fires. Pulled up, the planner (which cannot know how few
      -- numbers the array keeps) unnested every loan's fourteen and joined
      -- the payments' sums after them: 12 s for the loan family.
      FROM (SELECT * FROM flagged l
             WHERE (l.motor_missing OR l.contact_incomplete OR l.submitter_inactive OR l.principal_mismatch
                   OR l.total_mismatch OR l.schedule_missing OR l.sequence_gap OR l.overpaid OR l.completed_not_paid
                   OR l.paid_not_completed OR l.is_overdue OR l.is_stale OR l.unapproved_motor OR l.misapplied > 0)
            OFFSET 0) l
     -- The rules that fire, as their numbers: a row for each, not one per
     -- rule to filter (a VALUES row per rule and loan cost about 140 ms
     -- over the 7,300 flagged loans of 100,000).
     CROSS JOIN LATERAL unnest(array_remove(ARRAY[
            CASE WHEN l.motor_missing THEN 1 END,
            CASE WHEN l.contact_incomplete THEN 2 END,
            CASE WHEN l.submitter_inactive THEN 3 END,
            CASE WHEN l.principal_mismatch THEN 4 END,
            CASE WHEN l.total_mismatch THEN 5 END,
            CASE WHEN l.schedule_missing THEN 6 END,
            CASE WHEN l.sequence_gap THEN 7 END,
            CASE WHEN l.overpaid THEN 8 END,
            CASE WHEN l.completed_not_paid THEN 9 END,
            CASE WHEN l.paid_not_completed THEN 10 END,
            CASE WHEN l.is_overdue THEN 11 END,
            CASE WHEN l.is_stale THEN 12 END,
            CASE WHEN l.misapplied > 0 THEN 13 END,
            CASE WHEN l.unapproved_motor THEN 15 END], NULL)) AS o(ord)
      JOIN (VALUES
        (1, 'error', 'motor_missing'),
        (2, 'warning', 'applicant_contact_incomplete'),
        (3, 'warning', 'submitter_inactive'),
        (4, 'error', 'principal_mismatch'),
        (5, 'error', 'schedule_total_mismatch'),
        (6, 'warning', 'schedule_missing'),
        (7, 'warning', 'schedule_sequence_gap'),
        (8, 'error', 'overpaid'),
        (9, 'error', 'completed_not_paid'),
        (10, 'warning', 'paid_not_completed'),
        (11, 'warning', 'overdue'),
        (12, 'warning', 'overdue_status_stale'),
        (13, 'error', 'misapplied'),
        (15, 'error', 'unapproved_motor_financed')
     ) AS f(ord, severity, code) ON f.ord = o.ord
      -- Runs only for a loan's 'misapplied' row (a one-time filter), through
      -- its indexes; an installment several payments pay names the first.
      -- Nothing here asks for sorted rows: with enable_sort off (incremental
      -- runs) the planner got them by reading every installment in id order,
      -- 330 ms a loan. OFFSET 0 keeps it a subquery run per row (pulled up
      -- into the join, it aggregated every installment's payments).
      LEFT JOIN LATERAL (
        SELECT s.id, s.sequence, s.status, p.payment_id, p.payment_date
          FROM @s@.loans_paymentschedule s
         CROSS JOIN LATERAL (
               SELECT (array_agg(p.id ORDER BY p.id))[1] AS payment_id,
                      (array_agg(p.payment_date ORDER BY p.id))[1] AS payment_date
                 FROM @s@.payments_payment p WHERE p.schedule_id = s.id) p
         WHERE f.code = 'misapplied' AND s.loan_application_id = l.id
           AND (s.status = 'paid') = (p.payment_id IS NULL)
        OFFSET 0) x ON true
     WHERE l.found OR f.code = 'misapplied'
)
SELECT severity, code, entity, entity_id, message, details
  FROM finding
 -- loan_id + 0: an order no join can provide, so the planner does not sort
 -- every loan for a merge join before the rules drop most of them (it
 -- hash-joins, then sorts the findings: about 0.08 s of the system check).
 ORDER BY loan_id + 0, severity, ord, entity_id
