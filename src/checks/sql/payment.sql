-- Payment family. Placeholders (written @name@ in the SQL) filled in by checks/mod.rs:
--   <s>     the quoted schema of the Motofinai tables
--   <paying> the column <pay> tests: p.id, or p.loan_application_id for the payments of a set of loans
--   <pay>   its condition: "= $1" for one payment, "IS NOT NULL" for all, "= ANY ($1)" for loans
--   <dup>   the query finding each checked payment's possible duplicates (dup_one.sql or dup_all.sql)
WITH pay AS (
    SELECT p.* FROM @s@.payments_payment p WHERE @paying@ @pay@
), dup AS (
    @dup@
), checked AS (
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
              FROM pay p
              LEFT JOIN @s@.loans_loanapplication l ON l.id = p.loan_application_id
              LEFT JOIN @s@.loans_paymentschedule s ON s.id = p.schedule_id
    ) c
), finding AS (
SELECT f.ord, f.severity, f.code, 'payment'::text AS entity, c.id AS entity_id,
       CASE f.code
         WHEN 'loan_missing' THEN format('Payment references non-existent loan (ID: %s)', c.loan_id)
         WHEN 'installment_missing' THEN format('Payment references non-existent installment (ID: %s)', c.schedule_id)
         WHEN 'schedule_loan_mismatch'
           THEN format('Payment is recorded on loan %s but its installment belongs to loan %s',
                       c.loan_id, c.schedule_loan_id)
         WHEN 'future_payment_date' THEN 'Payment date is in the future'
         WHEN 'amount_exceeds_schedule'
           THEN format('Payment amount (%s) exceeds scheduled amount (%s) by more than 10%%', c.amount, c.total_amount)
         WHEN 'amount_differs_from_schedule'
           THEN format('Payment amount (%s) differs from scheduled amount (%s)', c.amount, c.total_amount)
         WHEN 'payment_before_activation' THEN 'Payment dated before the loan was activated'
       END AS message,
       CASE f.code
         WHEN 'loan_missing' THEN jsonb_build_object('loan_id', c.loan_id)
         WHEN 'installment_missing' THEN jsonb_build_object('schedule_id', c.schedule_id)
         WHEN 'schedule_loan_mismatch'
           THEN jsonb_build_object('loan_id', c.loan_id, 'schedule_id', c.schedule_id,
                                   'schedule_loan_id', c.schedule_loan_id)
         WHEN 'future_payment_date' THEN jsonb_build_object('payment_date', c.payment_date, 'today', CURRENT_DATE)
         WHEN 'amount_exceeds_schedule' THEN jsonb_build_object('amount', c.amount, 'scheduled', c.total_amount)
         WHEN 'amount_differs_from_schedule' THEN jsonb_build_object('amount', c.amount, 'scheduled', c.total_amount)
         WHEN 'payment_before_activation'
           THEN jsonb_build_object('payment_date', c.payment_date, 'activated_on', c.activated_at::date)
       END AS details
  FROM checked c
 CROSS JOIN LATERAL (VALUES
    (1, 'error', 'loan_missing', c.loan_missing),
    (2, 'error', 'installment_missing', c.installment_missing),
    (3, 'error', 'schedule_loan_mismatch', c.loan_mismatch),
    (4, 'error', 'future_payment_date', c.future_date),
    (5, 'warning', 'amount_exceeds_schedule', c.exceeds),
    (6, 'warning', 'amount_differs_from_schedule', c.differs),
    (8, 'warning', 'payment_before_activation', c.before_activation)
 ) AS f(ord, severity, code, fires)
 WHERE c.flagged AND f.fires
UNION ALL
-- Duplicates come from their own small query, not from a join over every payment.
SELECT 7, 'warning', 'possible_duplicate', 'payment', d.id,
       format('Payment may duplicate payment(s) %s', array_to_string(d.others, ', ')),
       jsonb_build_object('payment_ids', to_jsonb(d.others))
  FROM dup d
)
SELECT severity, code, entity, entity_id, message, details
  FROM finding
 ORDER BY entity_id, severity, ord
