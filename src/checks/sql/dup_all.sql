-- Possible duplicates of every payment: a parallel hash self-join per key
-- keeps only the pairs of payments that share it. A key is a non-blank
-- reference, or a (bank_name, bank_reference) or (bank_name, check_number)
-- with both parts non-blank. Same loan, amount and date alone is two equal
-- installments paid at once, not a duplicate. (Grouping by each key instead
-- hashes every payment into its own group: 1.6 s against 1.3 s at 1.3
-- million payments, most of it the references.) Only one side's key is
-- tested for blanks: the other's equals it. The payments with a bank name
-- are read once for both bank keys (each self-join read every payment twice
-- in one process: 0.4 s each at 1.3 million payments), cheap tests first.
WITH bank AS MATERIALIZED (
    SELECT p.id, p.bank_name, p.bank_reference, p.check_number
      FROM @s@.payments_payment p
     WHERE p.bank_name <> '' AND (p.bank_reference <> '' OR p.check_number <> '') AND btrim(p.bank_name) <> ''
)
SELECT d.id, array_agg(DISTINCT d.other ORDER BY d.other) AS others
  FROM (SELECT p.id, q.id AS other
          FROM @s@.payments_payment p
          JOIN @s@.payments_payment q ON q.reference = p.reference AND q.id <> p.id
         WHERE btrim(p.reference) <> ''
        UNION ALL
        SELECT p.id, q.id
          FROM bank p
          JOIN bank q ON q.bank_name = p.bank_name AND q.bank_reference = p.bank_reference AND q.id <> p.id
         WHERE btrim(p.bank_reference) <> ''
        UNION ALL
        SELECT p.id, q.id
          FROM bank p
          JOIN bank q ON q.bank_name = p.bank_name AND q.check_number = p.check_number AND q.id <> p.id
         WHERE btrim(p.check_number) <> '') d
 GROUP BY d.id
