-- Possible duplicates of the payments in "pay", looked up one by one through
-- the index on loan_application_id (and a scan for the reference).
SELECT p.id, array_agg(DISTINCT q.id ORDER BY q.id) AS others
  FROM pay p
  JOIN @s@.payments_payment q
    ON q.id <> p.id
   AND ((q.loan_application_id = p.loan_application_id AND q.amount = p.amount
         AND q.payment_date = p.payment_date)
        OR (btrim(p.reference) <> '' AND q.reference = p.reference))
 GROUP BY p.id
