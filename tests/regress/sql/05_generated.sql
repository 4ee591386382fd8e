-- Generated data: a clean dataset of 2,000 loans has no errors; with 3
-- injected cases of every defect, the all-rows checks return exactly the
-- recorded ground truth, and every single-entity check agrees with them.
\set ECHO none
\set QUIET on
\i ../generator/generate.sql
\set QUIET off
\set ECHO all
SELECT motofinai_gen.generate(2000);
SELECT (SELECT count(*) FROM loans_loanapplication) AS loans,
       (SELECT count(*) FROM loans_paymentschedule) AS installments,
       (SELECT count(*) FROM payments_payment) AS payments;
SELECT severity, code, count(*) FROM check_system_consistency() GROUP BY 1, 2 ORDER BY 1, 2;
-- The only findings are the natural ones the generator recorded.
SELECT count(*) AS unrecorded FROM (
    SELECT code, entity, entity_id FROM check_system_consistency()
    EXCEPT SELECT code, entity, entity_id FROM motofinai_gen.expected) x;

SELECT motofinai_gen.inject(3);
ANALYZE;
CREATE TEMP TABLE actual AS
SELECT severity, code, entity, entity_id,
       CASE entity WHEN 'table' THEN (details ->> 'relation') || '.' || (details ->> 'column')
                   WHEN 'constraint' THEN details ->> 'constraint' END AS subject,
       message, details
  FROM check_system_consistency();
-- Exactly the injected set: nothing missing, nothing unexpected, nothing twice.
SELECT 'missing' AS diff, * FROM (SELECT code, entity, entity_id, subject FROM motofinai_gen.expected
                                  EXCEPT SELECT code, entity, entity_id, subject FROM actual) m
UNION ALL
SELECT 'unexpected', * FROM (SELECT code, entity, entity_id, subject FROM actual
                             EXCEPT SELECT code, entity, entity_id, subject FROM motofinai_gen.expected) u;
SELECT count(*) AS duplicated FROM (SELECT code, entity, entity_id, subject FROM actual
                                    GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d;
SELECT severity, code, count(*) FROM actual GROUP BY 1, 2 ORDER BY 1, 2;

-- Each family's all-rows form returns its part of the system check.
SELECT 'loan' AS family, count(*) AS differences FROM (
    (SELECT * FROM check_loan_consistency() EXCEPT
     SELECT severity, code, entity, entity_id, message, details FROM actual WHERE entity IN ('loan', 'schedule')
        AND code <> 'duplicate_installment_sequence')
    UNION ALL
    (SELECT severity, code, entity, entity_id, message, details FROM actual WHERE entity IN ('loan', 'schedule')
        AND code <> 'duplicate_installment_sequence'
     EXCEPT SELECT * FROM check_loan_consistency())) d
UNION ALL
SELECT 'payment', count(*) FROM (
    (SELECT * FROM check_payment_consistency() EXCEPT
     SELECT severity, code, entity, entity_id, message, details FROM actual WHERE entity = 'payment')
    UNION ALL
    (SELECT severity, code, entity, entity_id, message, details FROM actual WHERE entity = 'payment'
     EXCEPT SELECT * FROM check_payment_consistency())) d
UNION ALL
SELECT 'inventory', count(*) FROM (
    (SELECT * FROM check_inventory_consistency() EXCEPT
     SELECT severity, code, entity, entity_id, message, details FROM actual WHERE entity IN ('motor', 'stock'))
    UNION ALL
    (SELECT severity, code, entity, entity_id, message, details FROM actual WHERE entity IN ('motor', 'stock')
     EXCEPT SELECT * FROM check_inventory_consistency())) d;

-- Every single-entity form agrees with the all-rows form on the same data.
-- (The single-payment check looks references up through this index.)
SELECT motofinai.create_check_indexes();
CREATE TEMP TABLE single AS
SELECT 'loan' AS family, f.* FROM loans_loanapplication l, check_loan_consistency(l.id) f
UNION ALL
SELECT 'payment', f.* FROM payments_payment p, check_payment_consistency(p.id) f
UNION ALL
SELECT 'inventory', f.* FROM inventory_motor m, check_inventory_consistency(m.id) f;
CREATE TEMP TABLE every AS
SELECT 'loan' AS family, * FROM check_loan_consistency()
UNION ALL
SELECT 'payment', * FROM check_payment_consistency()
UNION ALL
SELECT 'inventory', * FROM check_inventory_consistency();
SELECT family, count(*) AS disagreements
  FROM ((TABLE single EXCEPT TABLE every) UNION ALL (TABLE every EXCEPT TABLE single)) d
 GROUP BY family ORDER BY family;
SELECT family, count(*) AS findings FROM single GROUP BY family ORDER BY family;

-- A payment with a bank reference or check number, checked alone, is looked
-- up through the partial indexes, never by a scan of every payment: where
-- the statistics say every bank key is blank (as on the generator's data at
-- 100,000 loans), the planner reckons a lookup returns every row and costs
-- a scan below the index. Here cheap scans stand in for those statistics.
-- (The counts include earlier transactions' that are not reported yet, and
-- none are reported inside a transaction: the difference is what the checks
-- did. A new session: no plan of the statements above is reused.)
\c
SELECT array_agg(id) AS bank_keyed FROM payments_payment
 WHERE btrim(bank_reference) <> '' OR btrim(check_number) <> '' \gset
BEGIN;
SET LOCAL seq_page_cost = 0.01;
SET LOCAL cpu_tuple_cost = 0.0001;
SET LOCAL cpu_operator_cost = 0.00001;
SET LOCAL random_page_cost = 100;
CREATE TEMP VIEW bank_lookups AS
SELECT pg_stat_get_xact_numscans('motofinai_payment_bank_reference_idx'::regclass)
     + pg_stat_get_xact_numscans('motofinai_payment_check_number_idx'::regclass) AS n;
SELECT n AS lookups FROM bank_lookups \gset
SELECT count(*) > 0 AS found FROM unnest(:'bank_keyed'::bigint[]) p(id), check_payment_consistency(p.id) f;
-- One per payment and bank key.
SELECT n - :lookups AS index_lookups, cardinality(:'bank_keyed'::bigint[]) AS payments FROM bank_lookups;
COMMIT;
-- An incremental check (check_loans, planned with enable_sort off) of a
-- loan with a misapplied installment reads its installments through the
-- loan index, not every installment in id order.
BEGIN;
SELECT s.id AS inst, s.loan_application_id AS mloan FROM loans_paymentschedule s
 WHERE s.status = 'paid' AND EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id)
 ORDER BY s.id LIMIT 1 \gset
UPDATE loans_paymentschedule SET status = 'due' WHERE id = :inst;
-- Rows fetched through the table's indexes count on the index.
CREATE TEMP VIEW installments_fetched AS
SELECT sum(pg_stat_get_xact_tuples_fetched(r)) AS n
  FROM (SELECT indexrelid FROM pg_index WHERE indrelid = 'loans_paymentschedule'::regclass
        UNION ALL SELECT 'loans_paymentschedule'::regclass) i(r);
SELECT n AS fetched FROM installments_fetched \gset
SELECT f.code, f.entity, f.entity_id = :inst AS the_installment FROM motofinai.check_loans(ARRAY[:mloan]::bigint[]) f
 WHERE f.code IN ('payment_not_applied', 'schedule_paid_without_payment');
SELECT n - :fetched < 1000 AS installments_by_index FROM installments_fetched;
ROLLBACK;
