-- Payment family. Placeholders (written @name@ in the SQL) filled in by checks/mod.rs:
--   <s>     the quoted schema of the Motofinai tables
--   <pay>   a condition on a payment id: "= $1" for one payment, "IS NOT NULL" for all
--   <dup>   the query finding each checked payment's possible duplicates (dup_one.sql or dup_all.sql)
WITH pay AS (
    SELECT p.* FROM @s@.payments_payment p WHERE p.id @pay@
), dup AS (
    @dup@
), checked AS (
    SELECT p.id, p.loan_application_id AS loan_id, p.schedule_id, p.amount, p.payment_date,
           l.id AS loan_found, l.activated_at,
           s.id AS schedule_found, s.loan_application_id AS schedule_loan_id, s.total_amount,
           d.others
      FROM pay p
      LEFT JOIN @s@.loans_loanapplication l ON l.id = p.loan_application_id
      LEFT JOIN @s@.loans_paymentschedule s ON s.id = p.schedule_id
      LEFT JOIN dup d ON d.id = p.id
)
SELECT f.severity, f.code, 'payment'::text AS entity, c.id AS entity_id, f.message, f.details
  FROM checked c
 CROSS JOIN LATERAL (VALUES
    (1, 'error', 'loan_missing',
     CASE WHEN c.loan_found IS NULL
          THEN format('Payment references non-existent loan (ID: %s)', c.loan_id) END,
     jsonb_build_object('loan_id', c.loan_id)),
    (2, 'error', 'installment_missing',
     CASE WHEN c.schedule_found IS NULL
          THEN format('Payment references non-existent installment (ID: %s)', c.schedule_id) END,
     jsonb_build_object('schedule_id', c.schedule_id)),
    (3, 'error', 'schedule_loan_mismatch',
     CASE WHEN c.schedule_loan_id <> c.loan_id
          THEN format('Payment is recorded on loan %s but its installment belongs to loan %s',
                      c.loan_id, c.schedule_loan_id) END,
     jsonb_build_object('loan_id', c.loan_id, 'schedule_id', c.schedule_id,
                        'schedule_loan_id', c.schedule_loan_id)),
    (4, 'error', 'future_payment_date',
     CASE WHEN c.payment_date > CURRENT_DATE THEN 'Payment date is in the future' END,
     jsonb_build_object('payment_date', c.payment_date, 'today', CURRENT_DATE)),
    (5, 'warning', 'amount_exceeds_schedule',
     CASE WHEN c.amount > 1.10 * c.total_amount
          THEN format('Payment amount (%s) exceeds scheduled amount (%s) by more than 10%%',
                      c.amount, c.total_amount) END,
     jsonb_build_object('amount', c.amount, 'scheduled', c.total_amount)),
    (6, 'warning', 'amount_differs_from_schedule',
     CASE WHEN c.amount <> c.total_amount AND NOT c.amount > 1.10 * c.total_amount
          THEN format('Payment amount (%s) differs from scheduled amount (%s)', c.amount, c.total_amount) END,
     jsonb_build_object('amount', c.amount, 'scheduled', c.total_amount)),
    (7, 'warning', 'possible_duplicate',
     CASE WHEN c.others IS NOT NULL
          THEN format('Payment may duplicate payment(s) %s', array_to_string(c.others, ', ')) END,
     jsonb_build_object('payment_ids', to_jsonb(c.others))),
    (8, 'warning', 'payment_before_activation',
     CASE WHEN c.payment_date < c.activated_at::date
          THEN 'Payment dated before the loan was activated' END,
     jsonb_build_object('payment_date', c.payment_date, 'activated_on', c.activated_at::date))
 ) AS f(ord, severity, code, message, details)
 WHERE f.message IS NOT NULL
 ORDER BY c.id, f.severity, f.ord
