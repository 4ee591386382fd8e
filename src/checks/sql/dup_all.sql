-- Possible duplicates of every payment: a parallel hash self-join per key
-- keeps only the pairs of payments that share it. A key is a non-blank
-- reference, or a (bank_name, bank_reference) or (bank_name, check_number)
-- with both parts non-blank. Same loan, amount and date alone is two equal
-- installments paid at once, not a duplicate. (Grouping by each key instead
-- hashes every payment into its own group: 1.6 s against 1.3 s at 1.3
-- million payments, most of it the references.)
SELECT d.id, array_agg(DISTINCT d.other ORDER BY d.other) AS others
  FROM (SELECT p.id, q.id AS other
          FROM @s@.payments_payment p
          JOIN @s@.payments_payment q ON q.reference = p.reference AND q.id <> p.id
         WHERE btrim(p.reference) <> '' AND btrim(q.reference) <> ''
        UNION ALL
        SELECT p.id, q.id
          FROM @s@.payments_payment p
          JOIN @s@.payments_payment q
            ON q.bank_name = p.bank_name AND q.bank_reference = p.bank_reference AND q.id <> p.id
         WHERE btrim(p.bank_name) <> '' AND btrim(p.bank_reference) <> ''
           AND btrim(q.bank_name) <> '' AND btrim(q.bank_reference) <> ''
        UNION ALL
        SELECT p.id, q.id
          FROM @s@.payments_payment p
          JOIN @s@.payments_payment q
            ON q.bank_name = p.bank_name AND q.check_number = p.check_number AND q.id <> p.id
         WHERE btrim(p.bank_name) <> '' AND btrim(p.check_number) <> ''
           AND btrim(q.bank_name) <> '' AND btrim(q.check_number) <> '') d
 GROUP BY d.id
