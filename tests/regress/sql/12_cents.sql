-- motofinai.cents_sum(numeric): the checks' sum of amounts that are whole
-- cents. It must give sum()'s result, scale and NaN included, in one
-- process and in a parallel aggregate (its combine function), and refuse
-- what it cannot add exactly.
-- Every shape of a stored numeric: short and long headers (a dscale above
-- 63 or a weight beyond the short form's), weights from -1 up, negatives,
-- zeros, trailing zero digits. The result has scale 2, which is sum()'s for
-- a numeric(p, 2) column (the only columns the checks give it).
SELECT x, motofinai.cents_sum(x) AS cents_sum, sum(x), motofinai.cents_sum(x) = sum(x) AS equal
  FROM (VALUES (0::numeric), (0.00), (-0.00), (0.01), (-0.01), (0.10), (0.5), (1), (12.34), (-12.34), (9999.99),
               (10000), (10000.01), (123456789012.34), (-99999999999999.99), (92233720368547758.07),
               (-92233720368547758.07), (1.0000000000000000000000000000000000000000000000000000000000000000000000),
               (1e60 - 1e60 + 5.25)) v(x)
 GROUP BY x ORDER BY x;
-- The state starts NULL: no rows, or only NULLs, give NULL, as sum() does.
SELECT motofinai.cents_sum(x) IS NULL AS no_rows FROM (SELECT 1.00 WHERE false) v(x);
SELECT motofinai.cents_sum(x) IS NULL AS only_nulls FROM (VALUES (NULL::numeric), (NULL)) v(x);
SELECT motofinai.cents_sum(x) AS nan, sum(x) FROM (VALUES (1.00), ('NaN'), (NULL), (2.00)) v(x);
-- What it cannot add exactly is an error, never a rounded sum.
SELECT show_error($$SELECT motofinai.cents_sum(x) FROM (VALUES (1.00), (0.001)) v(x)$$);
SELECT show_error($$SELECT motofinai.cents_sum(x) FROM (VALUES (1e-30)) v(x)$$);
SELECT show_error($$SELECT motofinai.cents_sum(x) FROM (VALUES (92233720368547758.07), (0.01)) v(x)$$);
SELECT show_error($$SELECT motofinai.cents_sum(x) FROM (VALUES (1e300)) v(x)$$);
SELECT show_error($$SELECT motofinai.cents_sum(x) FROM (VALUES ('Infinity'::numeric)) v(x)$$);

-- Seeded random groups (fixed seed: the expected output is exact), summed
-- in a parallel plan: partial sums in the workers, combined in the leader.
SELECT setseed(0.4242);
CREATE TABLE cents_random AS
SELECT (random() * 300)::int AS g,
       CASE WHEN random() < 0.02 THEN NULL
            ELSE round(((random() - 0.3) * 10 ^ (random() * 12))::numeric, (random() * 2)::int) END AS x
  FROM generate_series(1, 200000);
INSERT INTO cents_random VALUES (301, 'NaN'), (301, 5.00), (302, NULL);
ANALYZE cents_random;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET enable_sort = off;
CREATE FUNCTION plan_of(sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || sql;
END $$;
SELECT count(*) FILTER (WHERE line ~ 'Partial HashAggregate') AS partial_aggregates
  FROM plan_of('SELECT g, motofinai.cents_sum(x) FROM cents_random GROUP BY g') line;
-- Values rounded to 0, 1 or 2 decimals: compared by value (scale 2 is the
-- numeric(p, 2) columns' own, above).
SELECT count(*) AS groups, count(*) FILTER (WHERE c IS DISTINCT FROM s) AS differ
  FROM (SELECT g, motofinai.cents_sum(x) AS c, sum(x) AS s FROM cents_random GROUP BY g) r;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET enable_sort;
DROP TABLE cents_random;
DROP FUNCTION plan_of(text);

-- The checks use it only where every value is whole cents and fits: the
-- Motofinai columns, numeric(12, 2). Widened beyond 18 digits, a schedule
-- whose total is beyond an int8 of cents is summed by sum(): the finding,
-- not an error.
SELECT motofinai_one_loan_in('cents', 200.00, '0');
SET motofinai.tables_schema = cents;
INSERT INTO cents.loans_paymentschedule (id, sequence, due_date, principal_amount, interest_amount, total_amount,
                                         status, paid_at, created_at, loan_application_id)
VALUES (1, 1, current_date + 30, 100.00, 0, 100.00, 'due', NULL, now(), 1),
       (2, 2, current_date + 60, 100.25, 0, 100.25, 'due', NULL, now(), 1);
SELECT code, message FROM check_loan_consistency(1);
SELECT code, message FROM check_system_consistency() WHERE entity = 'loan';
ALTER TABLE cents.loans_paymentschedule ALTER principal_amount TYPE numeric(20, 2),
                                        ALTER total_amount TYPE numeric(20, 2);
UPDATE cents.loans_paymentschedule SET principal_amount = 60000000000000000.00, total_amount = 60000000000000000.00;
SELECT code, message FROM check_loan_consistency(1);
SELECT code, message FROM check_system_consistency() WHERE entity = 'loan';
-- At numeric(18, 2) every value is whole cents that fit an int8, and the
-- checks add cents: a schedule beyond 2^63 cents in all is an error
-- (22003), never a rounded sum (eleven installments of 9e15).
UPDATE cents.loans_paymentschedule SET principal_amount = 9000000000000000.00, total_amount = 9000000000000000.00;
ALTER TABLE cents.loans_paymentschedule ALTER principal_amount TYPE numeric(18, 2),
                                        ALTER total_amount TYPE numeric(18, 2);
INSERT INTO cents.loans_paymentschedule (id, sequence, due_date, principal_amount, interest_amount, total_amount,
                                         status, paid_at, created_at, loan_application_id)
SELECT k, k, current_date + 30 * k, 9000000000000000.00, 0, 9000000000000000.00, 'due', NULL, now(), 1
  FROM generate_series(3, 11) k;
SELECT split_part(show_error($$SELECT * FROM check_loan_consistency(1)$$), E'\n', 1) AS error;
DELETE FROM cents.loans_paymentschedule WHERE id > 2;
SELECT code, message FROM check_loan_consistency(1);
RESET motofinai.tables_schema;
DROP SCHEMA cents CASCADE;
