-- Loan family. Placeholders (written @name@ in the SQL) filled in by checks/mod.rs:
--   <s>     the quoted schema of the Motofinai tables
--   <loan>  a condition on a loan id: "= $1" for one loan, "IS NOT NULL" for all
-- One pass over installments and one over payments, aggregated per loan and
-- hash-joined to the loans; per-installment anomalies come from one more join.
WITH inst AS (
    SELECT s.loan_application_id AS loan_id,
           count(*) AS n,
           sum(s.principal_amount) AS principal_sum,
           sum(s.total_amount) AS owed,
           count(*) FILTER (WHERE s.status <> 'paid') AS unpaid,
           count(*) FILTER (WHERE s.status <> 'paid' AND s.due_date < CURRENT_DATE) AS overdue,
           array_agg(s.id ORDER BY s.sequence)
               FILTER (WHERE s.status <> 'paid' AND s.due_date < CURRENT_DATE) AS overdue_ids,
           count(*) FILTER (WHERE s.status = 'due' AND s.due_date < CURRENT_DATE) AS stale,
           array_agg(s.id ORDER BY s.sequence)
               FILTER (WHERE s.status = 'due' AND s.due_date < CURRENT_DATE) AS stale_ids,
           -- 1..n exactly: with n rows, min 1, max n and the sums of 1..n and
           -- of its squares (no sort for a DISTINCT count is needed).
           min(s.sequence) = 1 AND max(s.sequence) = count(*)
               AND sum(s.sequence::bigint) = count(*) * (count(*) + 1) / 2
               AND sum(s.sequence::bigint * s.sequence) = count(*) * (count(*) + 1) * (2 * count(*) + 1) / 6
               AS sequence_ok
      FROM @s@.loans_paymentschedule s
     WHERE s.loan_application_id @loan@
     GROUP BY s.loan_application_id
), paid AS (
    SELECT p.loan_application_id AS loan_id, sum(p.amount) AS paid, count(*) AS n
      FROM @s@.payments_payment p
     WHERE p.loan_application_id @loan@
     GROUP BY p.loan_application_id
), loan AS (
    SELECT l.id, l.status, l.motor_id, l.loan_amount, l.down_payment, l.principal_amount,
           l.applicant_first_name, l.applicant_last_name, l.applicant_email, l.applicant_phone,
           l.approved_by_id, l.second_approval_by_id,
           m.id AS motor_found, m.approval_status AS motor_status,
           u.username, u.is_active AS submitter_active,
           coalesce(i.n, 0) AS n, coalesce(i.principal_sum, 0.00) AS principal_sum,
           coalesce(i.owed, 0.00) AS owed, coalesce(i.unpaid, 0) AS unpaid,
           coalesce(i.overdue, 0) AS overdue, i.overdue_ids,
           coalesce(i.stale, 0) AS stale, i.stale_ids,
           coalesce(i.sequence_ok, true) AS sequence_ok,
           coalesce(y.paid, 0.00) AS paid, coalesce(y.n, 0) AS payments
      FROM @s@.loans_loanapplication l
      LEFT JOIN inst i ON i.loan_id = l.id
      LEFT JOIN paid y ON y.loan_id = l.id
      LEFT JOIN @s@.inventory_motor m ON m.id = l.motor_id
      LEFT JOIN @s@.users_user u ON u.id = l.submitted_by_id
     WHERE l.id @loan@
), finding AS (
    SELECT f.ord, f.severity, f.code, 'loan'::text AS entity, l.id AS entity_id, f.message, f.details
      FROM loan l
     CROSS JOIN LATERAL (VALUES
        (1, 'error', 'motor_missing',
         CASE WHEN l.motor_found IS NULL
              THEN format('Loan references non-existent motor (ID: %s)', l.motor_id) END,
         jsonb_build_object('motor_id', l.motor_id)),
        (2, 'warning', 'applicant_contact_incomplete',
         CASE WHEN btrim(l.applicant_first_name) = '' OR btrim(l.applicant_last_name) = ''
                OR btrim(l.applicant_email) = '' OR btrim(l.applicant_phone) = ''
              THEN 'Loan applicant record is incomplete: ' || array_to_string(ARRAY[
                   CASE WHEN btrim(l.applicant_first_name) = '' THEN 'first name' END,
                   CASE WHEN btrim(l.applicant_last_name) = '' THEN 'last name' END,
                   CASE WHEN btrim(l.applicant_email) = '' THEN 'email' END,
                   CASE WHEN btrim(l.applicant_phone) = '' THEN 'phone' END], ', ') END,
         jsonb_build_object('first_name', l.applicant_first_name, 'last_name', l.applicant_last_name,
                            'email', l.applicant_email, 'phone', l.applicant_phone)),
        (3, 'warning', 'submitter_inactive',
         CASE WHEN l.status <> 'completed' AND NOT l.submitter_active
              THEN format('Loan applicant is inactive (submitting account %s is deactivated)', l.username) END,
         jsonb_build_object('username', l.username)),
        (4, 'error', 'principal_mismatch',
         CASE WHEN l.principal_amount <> l.loan_amount - l.down_payment OR l.down_payment > l.loan_amount
              THEN format('Principal (%s) does not equal loan amount (%s) minus down payment (%s)',
                          l.principal_amount, l.loan_amount, l.down_payment) END,
         jsonb_build_object('principal_amount', l.principal_amount, 'loan_amount', l.loan_amount,
                            'down_payment', l.down_payment, 'expected', l.loan_amount - l.down_payment)),
        (5, 'error', 'schedule_total_mismatch',
         CASE WHEN l.n > 0 AND l.principal_sum <> l.principal_amount
              THEN format('Payment schedule total (%s) does not match loan amount (%s)',
                          l.principal_sum, l.principal_amount) END,
         jsonb_build_object('schedule_total', l.principal_sum, 'principal_amount', l.principal_amount,
                            'installments', l.n)),
        (6, 'warning', 'schedule_missing',
         CASE WHEN l.n = 0 AND (l.status = 'active' OR (l.status = 'approved'
                   AND l.approved_by_id IS NOT NULL AND l.second_approval_by_id IS NOT NULL))
              THEN 'Loan has no payment schedule' END,
         jsonb_build_object('status', l.status)),
        (7, 'warning', 'schedule_sequence_gap',
         CASE WHEN NOT l.sequence_ok
              THEN 'Payment schedule sequence has gaps: ' || (
                   SELECT string_agg(g::text, ', ' ORDER BY g)
                     FROM generate_series(1, l.n) g
                    WHERE NOT EXISTS (SELECT FROM @s@.loans_paymentschedule s
                                       WHERE s.loan_application_id = l.id AND s.sequence = g)) END,
         jsonb_build_object('installments', l.n)),
        (8, 'error', 'overpaid',
         CASE WHEN l.paid > l.owed
              THEN format('Total paid (%s) exceeds loan amount (%s)', l.paid, l.owed) END,
         jsonb_build_object('paid', l.paid, 'owed', l.owed, 'payments', l.payments)),
        (9, 'error', 'completed_not_paid',
         CASE WHEN l.status = 'completed' AND (l.unpaid > 0 OR l.paid < l.owed OR l.n = 0)
              THEN format('Loan marked completed but not fully paid (paid: %s, owed: %s)', l.paid, l.owed) END,
         jsonb_build_object('paid', l.paid, 'owed', l.owed, 'unpaid_installments', l.unpaid,
                            'installments', l.n)),
        (10, 'warning', 'paid_not_completed',
         CASE WHEN l.status = 'active' AND l.n > 0 AND l.unpaid = 0 AND l.paid >= l.owed
              THEN 'Loan is fully paid but still active' END,
         jsonb_build_object('paid', l.paid, 'owed', l.owed)),
        (11, 'warning', 'overdue',
         CASE WHEN l.overdue > 0 THEN format('%s payment(s) are overdue', l.overdue) END,
         jsonb_build_object('count', l.overdue, 'installment_ids', to_jsonb(l.overdue_ids))),
        (12, 'warning', 'overdue_status_stale',
         CASE WHEN l.stale > 0 THEN format('%s installment(s) past due are still marked due', l.stale) END,
         jsonb_build_object('count', l.stale, 'installment_ids', to_jsonb(l.stale_ids))),
        (15, 'error', 'unapproved_motor_financed',
         CASE WHEN l.status IN ('active', 'completed') AND l.motor_status <> 'approved'
              THEN format('Loan finances motor %s which is %s', l.motor_id, l.motor_status) END,
         jsonb_build_object('motor_id', l.motor_id, 'approval_status', l.motor_status))
     ) AS f(ord, severity, code, message, details)
     WHERE f.message IS NOT NULL
    UNION ALL
    -- An installment marked paid with no payment, or a payment on an unpaid installment.
    SELECT DISTINCT ON (s.id)
           CASE WHEN s.status = 'paid' THEN 13 ELSE 14 END,
           'error',
           CASE WHEN s.status = 'paid' THEN 'schedule_paid_without_payment' ELSE 'payment_not_applied' END,
           'schedule', s.id,
           CASE WHEN s.status = 'paid'
                THEN format('Installment %s is marked paid but has no payment', s.sequence)
                ELSE format('Installment %s has a payment but is not marked paid', s.sequence) END,
           jsonb_build_object('loan_id', s.loan_application_id, 'sequence', s.sequence,
                              'status', s.status, 'payment_id', p.id, 'payment_date', p.payment_date)
      FROM @s@.loans_paymentschedule s
      LEFT JOIN @s@.payments_payment p ON p.schedule_id = s.id
     WHERE s.loan_application_id @loan@ AND (s.status = 'paid') = (p.id IS NULL)
)
SELECT severity, code, entity, entity_id, message, details
  FROM finding
 ORDER BY coalesce((details ->> 'loan_id')::bigint, entity_id), severity, ord, entity_id
