-- Possible duplicates of the payments in "pay", looked up one by one: by loan
-- through the index on loan_application_id, by reference through an index on
-- reference where there is one (motofinai.create_check_indexes()).
SELECT p.id, array_agg(DISTINCT q.id ORDER BY q.id) AS others
  FROM pay p
  JOIN LATERAL (
        SELECT q.id FROM @s@.payments_payment q
         WHERE q.loan_application_id = p.loan_application_id AND q.amount = p.amount
           AND q.payment_date = p.payment_date AND q.id <> p.id
        UNION ALL
        SELECT q.id FROM @s@.payments_payment q
         WHERE btrim(p.reference) <> '' AND q.reference = p.reference
           AND btrim(q.reference) <> '' AND q.id <> p.id) q ON true
 GROUP BY p.id
