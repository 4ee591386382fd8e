-- Possible duplicates of the payments in <of> (the CTE of the payments
-- checked), looked up one by one (the groups of dup_all.sql), per key only
-- for the payments whose key is not blank: one lookup loop per key, not one
-- loop whose every row re-runs three (about 5 ms over 14,500 payments). The
-- lookups use the indexes of motofinai.create_check_indexes() (the
-- reference's hash index: a probe reads one bucket page, not three levels
-- of a btree, about 10 ms less over 14,500 payments). OFFSET 0 keeps each a
-- lookup: flattened, the planner hashed every payment (0.66 s).
-- <twice>: for a set of payments, where that hash index exists, a condition
-- that keeps only the references it holds twice (checks/keys.rs): the
-- others have no duplicate, and asking the index alone costs a fraction of
-- a lookup. Else empty.
SELECT d.id, array_agg(DISTINCT d.other ORDER BY d.other) AS others
  FROM (SELECT p.id, q.id AS other
          FROM @of@ p
          JOIN LATERAL (SELECT q.id FROM @s@.payments_payment q
                         WHERE q.reference = p.reference AND btrim(q.reference) <> '' AND q.id <> p.id OFFSET 0) q ON true
         WHERE btrim(p.reference) <> ''@twice@
        UNION ALL
        SELECT p.id, q.id
          FROM @of@ p
          JOIN LATERAL (SELECT q.id FROM @s@.payments_payment q
                         WHERE q.bank_name = p.bank_name AND q.bank_reference = p.bank_reference
                           AND btrim(q.bank_reference) <> '' AND q.id <> p.id OFFSET 0) q ON true
         WHERE btrim(p.bank_name) <> '' AND btrim(p.bank_reference) <> ''
        UNION ALL
        SELECT p.id, q.id
          FROM @of@ p
          JOIN LATERAL (SELECT q.id FROM @s@.payments_payment q
                         WHERE q.bank_name = p.bank_name AND q.check_number = p.check_number
                           AND btrim(q.check_number) <> '' AND q.id <> p.id OFFSET 0) q ON true
         WHERE btrim(p.bank_name) <> '' AND btrim(p.check_number) <> '') d
 GROUP BY d.id
