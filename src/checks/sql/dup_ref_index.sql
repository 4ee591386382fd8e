-- dup_all.sql's <ref> where an index leads with the reference
-- (Schema::has_lookup_index): the references shared by several payments
-- come from one ordered pass over the index (an index-only scan, about
-- 0.35 s at 1.3 million payments, against 0.9 s for the self-join), their
-- payments are looked up by it, and each reference's payments are paired.
-- The references travel as an array: the planner takes an array it cannot
-- see for a few elements (of the grouping itself it expects a third of the
-- payments, and would hash-join them all), and still hashes them where the
-- lookups would not be cheap. The ORDER BY makes the ordered pass the
-- cheaper plan (a hash aggregate spills).
        SELECT a.id, b.id AS other
          FROM (SELECT array_agg(q.id) AS ids
                  FROM @s@.payments_payment q
                 WHERE btrim(q.reference) <> ''
                   AND q.reference IN (SELECT unnest(array_agg(k.reference)) FROM (
                           SELECT p.reference FROM @s@.payments_payment p WHERE btrim(p.reference) <> ''
                            GROUP BY p.reference HAVING count(*) > 1 ORDER BY p.reference) k)
                 GROUP BY q.reference) g,
               unnest(g.ids) a(id), unnest(g.ids) b(id)
         WHERE a.id <> b.id
