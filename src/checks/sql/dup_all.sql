-- Possible duplicates of every payment: two hash aggregates keep only the
-- groups with more than one member, then each member lists the others.
SELECT g.id, array_agg(DISTINCT o.other ORDER BY o.other) AS others
  FROM (SELECT array_agg(id) AS ids
          FROM @s@.payments_payment
         GROUP BY loan_application_id, amount, payment_date HAVING count(*) > 1
        UNION ALL
        SELECT array_agg(id)
          FROM @s@.payments_payment
         WHERE btrim(reference) <> ''
         GROUP BY reference HAVING count(*) > 1) AS grp
 CROSS JOIN LATERAL unnest(grp.ids) AS g(id)
 CROSS JOIN LATERAL unnest(grp.ids) AS o(other)
 WHERE o.other <> g.id
 GROUP BY g.id
