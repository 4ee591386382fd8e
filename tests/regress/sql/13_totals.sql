-- motofinai.installment_totals(...): the loan rules' per-loan totals of the
-- installments and their payments in one aggregate (checks/totals.rs). Each
-- column must be what loan_inst.sql's own aggregates and filters give, on
-- rows where the states combine: NULLs in every column, NaN amounts,
-- infinite dates, repeated and missing sequences, payments of another loan
-- or of another amount, in one process and in a parallel plan.
SELECT setseed(0.1313);
CREATE TABLE totals_installments AS
SELECT g, (ARRAY['paid', 'due', 'overdue', 'PAID', 'paid ', NULL])[1 + (random() * 5.9)::int] AS status,
       CASE WHEN random() < 0.03 THEN NULL
            WHEN random() < 0.01 THEN 'infinity'::date
            ELSE current_date + (random() * 200 - 100)::int END AS due_date,
       CASE WHEN random() < 0.03 THEN NULL ELSE (random() * 12)::int END AS sequence,
       CASE WHEN random() < 0.02 THEN NULL WHEN random() < 0.01 THEN 'NaN'
            ELSE round((random() * 900)::numeric, 2) END::numeric(12, 2) AS principal,
       CASE WHEN random() < 0.02 THEN NULL WHEN random() < 0.01 THEN 'NaN'
            ELSE round((random() * 900)::numeric, 2) END::numeric(12, 2) AS total,
       CASE WHEN random() < 0.02 THEN NULL ELSE g END AS loan,
       random() < 0.6 AS paid_by
  FROM (SELECT (random() * 400)::int AS g FROM generate_series(1, 30000)) i;
-- Each paid installment's payment: mostly its own loan's, to the cent.
CREATE TABLE totals_rows AS
SELECT s.*,
       CASE WHEN s.paid_by THEN CASE WHEN random() < 0.9 THEN s.g ELSE s.g + 1 END END AS payment_loan,
       CASE WHEN NOT s.paid_by THEN NULL
            WHEN random() < 0.75 THEN s.total
            WHEN random() < 0.1 THEN 'NaN'
            ELSE round((random() * 900)::numeric, 2) END::numeric(12, 2) AS amount,
       CASE WHEN NOT s.paid_by THEN NULL
            WHEN random() < 0.02 THEN '-infinity'::date
            ELSE current_date + (random() * 120 - 100)::int END AS payment_date
  FROM totals_installments s;
DROP TABLE totals_installments;
-- Groups that end in every state: one row, and only NULLs.
INSERT INTO totals_rows (g, paid_by) VALUES (401, false), (402, true);
INSERT INTO totals_rows VALUES (403, 'paid', current_date - 1, 1, 10.00, 10.00, 403, true, 403, 10.00, current_date + 1);
ANALYZE totals_rows;
CREATE VIEW totals_compared AS
SELECT count(*) AS groups,
       count(*) FILTER (WHERE (t.n, t.principal_sum, t.owed, t.unpaid, t.overdue, t.stale, t.misapplied,
                               t.sequence_min, t.sequence_max, t.sequence_sums_ok, t.good, t.good_paid,
                               t.good_future, t.good_first)
                              IS DISTINCT FROM
                              (q.n, q.principal_sum, q.owed, q.unpaid, q.overdue, q.stale, q.misapplied,
                               q.sequence_min, q.sequence_max, q.sequence_sums_ok, q.good, q.good_paid,
                               q.good_future, q.good_first)) AS differ,
       -- Every state reached (whatever the PostgreSQL major's random()).
       sum(t.good) > 0 AND sum(t.stale) > 0 AND sum(t.misapplied) > 0 AND sum(t.good_future) > 0
           AND bool_or(t.good_paid = 'NaN') AND bool_or(t.owed IS NULL) AND bool_or(t.sequence_sums_ok)
           AND bool_or(t.good_first = '-infinity') AS every_state
  FROM (SELECT g, (motofinai.installment_totals(status, due_date, sequence, principal, total, loan, paid_by,
                                                payment_loan, amount, payment_date, current_date)).*
          FROM totals_rows GROUP BY g) t
  FULL JOIN (
        -- loan_inst.sql's aggregates, with its <distinct> and <good>.
        SELECT s.g, count(*) AS n,
               sum(s.principal) AS principal_sum, sum(s.total) AS owed,
               count(*) FILTER (WHERE s.status <> 'paid') AS unpaid,
               count(*) FILTER (WHERE s.status <> 'paid' AND s.due_date < CURRENT_DATE) AS overdue,
               count(*) FILTER (WHERE s.status = 'due' AND s.due_date < CURRENT_DATE AND NOT s.paid_by) AS stale,
               count(*) FILTER (WHERE (s.status = 'paid') = (NOT s.paid_by)) AS misapplied,
               min(s.sequence) AS sequence_min, max(s.sequence) AS sequence_max,
               sum(s.sequence) = count(*) * (count(*) + 1) / 2
                   AND sum(s.sequence::float8 * s.sequence) = count(*) * (count(*) + 1) * (2 * count(*) + 1) / 6
                   AS sequence_sums_ok,
               count(*) FILTER (WHERE ok) AS good, sum(s.amount) FILTER (WHERE ok) AS good_paid,
               count(*) FILTER (WHERE ok AND s.payment_date > CURRENT_DATE) AS good_future,
               min(s.payment_date) FILTER (WHERE ok) AS good_first
          FROM totals_rows s CROSS JOIN LATERAL (SELECT s.payment_loan = s.loan AND s.amount = s.total AS ok) g
         GROUP BY s.g) q ON q.g = t.g;
SELECT * FROM totals_compared;
-- Partial states in two workers, serialized, combined in the leader.
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
CREATE FUNCTION plan_of(sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || sql;
END $$;
SELECT count(*) FILTER (WHERE line ~ 'Partial (Hash|Group)Aggregate') AS partial_aggregates
  FROM plan_of($$SELECT g, motofinai.installment_totals(status, due_date, sequence, principal, total, loan, paid_by,
                    payment_loan, amount, payment_date, current_date) FROM totals_rows GROUP BY g$$) line;
SELECT * FROM totals_compared;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP FUNCTION plan_of(text);
DROP VIEW totals_compared;
DROP TABLE totals_rows;

-- Its support functions take and give an internal state, which no SQL
-- value is: PostgreSQL refuses to call them by hand (15 says a NULL cannot
-- be internal, 18 finds no such function).
SELECT show_error($$SELECT motofinai.installment_totals_final(NULL)$$) <> 'no error' AS refused;
SELECT show_error($$SELECT motofinai.installment_totals_deserialize(decode(repeat('00', 144), 'hex'), NULL)$$)
           <> 'no error' AS refused;

-- The checks use it where the columns are the migrations' types; other
-- types get loan_inst.sql's aggregates (no such function for a timestamp),
-- and the same findings.
SELECT motofinai_one_loan_in('totals', 300.00, '90 days');
SET motofinai.tables_schema = totals;
INSERT INTO totals.loans_paymentschedule (id, sequence, due_date, principal_amount, interest_amount, total_amount,
                                          status, paid_at, created_at, loan_application_id)
VALUES (1, 1, current_date - 60, 100.00, 0, 100.00, 'paid', now(), now(), 1),
       (2, 2, current_date - 30, 100.00, 0, 100.00, 'due', NULL, now(), 1),
       (3, 4, current_date + 30, 100.00, 0, 100.00, 'due', NULL, now(), 1);
INSERT INTO totals.payments_payment (id, amount, payment_date, reference, notes, recorded_at, loan_application_id,
    recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
VALUES (1, 100.00, current_date - 60, 'R1', '', now(), 1, 1, 1, '', '', '', 'cash', false),
       (2, 90.00, current_date + 5, 'R2', '', now(), 1, 1, 3, '', '', '', 'cash', false);
CREATE TEMP TABLE totals_found AS
SELECT code, entity, entity_id, message FROM check_system_consistency() WHERE entity IN ('loan', 'schedule', 'payment');
SELECT * FROM totals_found ORDER BY entity, entity_id, code;
ALTER TABLE totals.loans_paymentschedule ALTER due_date TYPE timestamp;
SELECT (SELECT count(*) FROM totals_found) AS findings,
       (SELECT count(*) FROM (SELECT code, entity, entity_id, message FROM check_system_consistency()
                               WHERE entity IN ('loan', 'schedule', 'payment')
                              EXCEPT SELECT * FROM totals_found) d) AS new_with_timestamps,
       (SELECT count(*) FROM (SELECT * FROM totals_found
                              EXCEPT SELECT code, entity, entity_id, message FROM check_system_consistency()) d)
           AS gone_with_timestamps;
RESET motofinai.tables_schema;
DROP SCHEMA totals CASCADE;
