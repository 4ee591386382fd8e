-- Possible duplicates of the payments in <of> (the CTE of the payments
-- checked), looked up one by one (the groups of dup_all.sql). A blank key is
-- a one-time filter that skips its lookup; the lookups use the partial
-- indexes of motofinai.create_check_indexes().
SELECT p.id, array_agg(DISTINCT q.id ORDER BY q.id) AS others
  FROM @of@ p
  JOIN LATERAL (
        SELECT q.id FROM @s@.payments_payment q
         WHERE btrim(p.reference) <> '' AND q.reference = p.reference
           AND btrim(q.reference) <> '' AND q.id <> p.id
        UNION ALL
        SELECT q.id FROM @s@.payments_payment q
         WHERE btrim(p.bank_name) <> '' AND btrim(p.bank_reference) <> ''
           AND q.bank_name = p.bank_name AND q.bank_reference = p.bank_reference
           AND btrim(q.bank_reference) <> '' AND q.id <> p.id
        UNION ALL
        SELECT q.id FROM @s@.payments_payment q
         WHERE btrim(p.bank_name) <> '' AND btrim(p.check_number) <> ''
           AND q.bank_name = p.bank_name AND q.check_number = p.check_number
           AND btrim(q.check_number) <> '' AND q.id <> p.id) q ON true
 GROUP BY p.id
