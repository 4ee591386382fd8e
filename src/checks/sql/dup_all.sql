-- Possible duplicates of every payment: hash aggregates keep only the groups
-- with more than one member, then each member lists the others. A group is a
-- shared non-blank reference, or a shared (bank_name, bank_reference) or
-- (bank_name, check_number) with both parts non-blank. Same loan, amount and
-- date alone is two equal installments paid at once, not a duplicate.
SELECT g.id, array_agg(DISTINCT o.other ORDER BY o.other) AS others
  FROM (SELECT array_agg(id) AS ids
          FROM @s@.payments_payment
         WHERE btrim(reference) <> ''
         GROUP BY reference HAVING count(*) > 1
        UNION ALL
        SELECT array_agg(id)
          FROM @s@.payments_payment
         WHERE btrim(bank_name) <> '' AND btrim(bank_reference) <> ''
         GROUP BY bank_name, bank_reference HAVING count(*) > 1
        UNION ALL
        SELECT array_agg(id)
          FROM @s@.payments_payment
         WHERE btrim(bank_name) <> '' AND btrim(check_number) <> ''
         GROUP BY bank_name, check_number HAVING count(*) > 1) AS grp
 CROSS JOIN LATERAL unnest(grp.ids) AS g(id)
 CROSS JOIN LATERAL unnest(grp.ids) AS o(other)
 WHERE o.other <> g.id
 GROUP BY g.id
