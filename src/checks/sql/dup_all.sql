-- Possible duplicates of every payment: the pairs of payments that share a
-- key. A key is a non-blank reference, or a (bank_name, bank_reference) or
-- (bank_name, check_number) with both parts non-blank. Same loan, amount
-- and date alone is two equal installments paid at once, not a duplicate.
-- <ref> pairs the references (dup_ref_*.sql). The bank keys: a parallel hash
-- self-join of the payments with a bank name, read once for both keys (each
-- self-join read every payment twice in one process: 0.4 s each at 1.3
-- million payments), cheap tests first. Only one side's key is tested for
-- blanks: the other's equals it.
WITH bank AS MATERIALIZED (
    SELECT p.id, p.bank_name, p.bank_reference, p.check_number
      FROM @s@.payments_payment p
     WHERE p.bank_name <> '' AND (p.bank_reference <> '' OR p.check_number <> '') AND btrim(p.bank_name) <> ''
)
SELECT d.id, array_agg(DISTINCT d.other ORDER BY d.other) AS others
  FROM (@ref@
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
