-- Motofinai dataset generator, in SQL, for tests and benchmarks.
--
--   SELECT motofinai_gen.generate(2000);   -- a clean dataset of 2,000 loans
--   SELECT motofinai_gen.inject(3);        -- then 3 cases of every defect
--   TABLE motofinai_gen.expected;          -- which code must fire on which id
--
-- The clean dataset follows the application's lifecycle: approvals, a
-- schedule whose principal adds up exactly (the last installment takes the
-- rounding) generated at the second approval, activation moving one unit of
-- stock to sold, payments equal to their installment marking it paid, the
-- daily job marking past-due installments overdue, completion when all is
-- paid. Its only findings are the `overdue` warnings of delinquent loans,
-- recorded in motofinai_gen.expected as natural (injected = false).
--
-- Loans by id % 20: 0-1 pending, 2 approved once, 3 approved twice (schedule,
-- not yet active), 4-13 active (id % 7 = 0: delinquent), 14-19 completed.
-- Everything is a function of the id, so a dataset is reproducible.
-- Expects the Motofinai tables in the current search_path.

CREATE SCHEMA IF NOT EXISTS motofinai_gen;

CREATE TABLE IF NOT EXISTS motofinai_gen.expected (
    code      text    NOT NULL,
    entity    text    NOT NULL,
    entity_id bigint,
    subject   text,             -- table.column or constraint, for table/constraint findings
    injected  boolean NOT NULL DEFAULT true
);

-- Entities already used by an injection: one defect per loan and per motor,
-- so that defects do not mask or add to each other unexpectedly.
CREATE TABLE IF NOT EXISTS motofinai_gen.used (kind text NOT NULL, id bigint NOT NULL, PRIMARY KEY (kind, id));

CREATE OR REPLACE FUNCTION motofinai_gen.generate(n_loans integer) RETURNS void
LANGUAGE plpgsql AS $gen$
DECLARE
    n_motors integer := greatest(200, n_loans / 20);
BEGIN
    TRUNCATE payments_payment, loans_paymentschedule, repossession_repossessioncase, loans_loanapplication,
             inventory_motor, inventory_stock, loans_financingterm, users_user, inventory_motorreceiving,
             motofinai_gen.expected, motofinai_gen.used;

    INSERT INTO users_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,
                            is_active, date_joined, role)
    SELECT g, '!', false, 'clerk' || g, 'Clerk', 'No. ' || g, 'clerk' || g || '@motofinai.example', true, true,
           now() - interval '3 years', 'staff'
      FROM generate_series(1, 20) g;

    INSERT INTO loans_financingterm (id, term_years, interest_rate, is_active, created_at, updated_at)
    VALUES (1, 1, 10.00, true, now(), now()), (2, 2, 12.00, true, now(), now()), (3, 3, 15.00, true, now(), now());

    INSERT INTO inventory_stock (id, brand, model_name, year, color, quantity_available, quantity_sold,
                                 created_at, updated_at, quantity_reserved, quantity_repossessed)
    SELECT g, 'Brand', 'Model ' || g, 2025, 'black', 5, 0, now(), now(), 0, 0
      FROM generate_series(1, n_motors) g;

    -- VINs are 17 characters of M, F and digits: well-formed and unique. Every 10th motor has none.
    INSERT INTO inventory_motor (id, type, brand, model_name, year, color, purchase_price, notes, created_at,
                                 updated_at, quantity, stock_id, approval_status, approval_notes, chassis_number)
    SELECT g, 'scooter', 'Brand', 'Model ' || g, 2025, 'black', 75000.00, '', now(), now(), 0, g, 'approved', '',
           CASE WHEN g % 10 = 0 THEN '' ELSE 'MF' || lpad(g::text, 15, '0') END
      FROM generate_series(1, n_motors) g;

    -- Loans. age = installments already past due (active), or months since the end (completed).
    CREATE TEMP TABLE gen_loan ON COMMIT DROP AS
    SELECT g AS id,
           CASE WHEN g % 20 < 2 THEN 'pending' WHEN g % 20 = 2 THEN 'approved1' WHEN g % 20 = 3 THEN 'approved2'
                WHEN g % 20 < 14 THEN 'active' ELSE 'completed' END AS kind,
           1 + g % 3 AS term_id, (1 + g % 3) AS years, 12 * (1 + g % 3) AS n,
           (ARRAY[10.00, 12.00, 15.00])[1 + g % 3]::numeric(5,2) AS rate,
           (50000 + (g % 100) * 1000)::numeric(12,2) AS amount,
           round((50000 + (g % 100) * 1000) * 0.2, 2) AS down,
           1 + g % n_motors AS motor_id,
           g % 7 = 0 AS delinquent,
           (g / 20) AS seed
      FROM generate_series(1, n_loans) g;
    ALTER TABLE gen_loan ADD COLUMN age integer;
    UPDATE gen_loan SET age = CASE kind WHEN 'active' THEN 1 + seed % (n - 1)
                                        WHEN 'completed' THEN n + seed % 12 END;

    INSERT INTO loans_loanapplication (id, applicant_first_name, applicant_last_name, applicant_email,
        applicant_phone, employment_status, employer_name, monthly_income, loan_amount, down_payment,
        principal_amount, interest_rate, monthly_payment, has_valid_id, has_proof_of_income, notes, status,
        submitted_at, approved_at, activated_at, completed_at, updated_at, financing_term_id, motor_id,
        submitted_by_id, approved_by_id, second_approval_at, second_approval_by_id)
    SELECT l.id, 'Applicant', 'No. ' || l.id, 'applicant' || l.id || '@example.com', '+63 900 ' || lpad(l.id::text, 7, '0'),
           'employed', 'Employer', 30000.00, l.amount, l.down, l.amount - l.down, l.rate,
           round((l.amount - l.down) / l.n, 2) + round((l.amount - l.down) * l.rate / 100 * l.years / l.n, 2),
           true, true, '',
           CASE l.kind WHEN 'approved1' THEN 'approved' WHEN 'approved2' THEN 'approved' ELSE l.kind END,
           now() - interval '5 years',
           CASE WHEN l.kind <> 'pending' THEN now() - interval '5 years' END,
           CASE WHEN l.kind IN ('active', 'completed')
                THEN ((current_date - make_interval(months => l.age))::date - 1)::timestamptz + interval '10 hours' END,
           NULL, now(), l.term_id, l.motor_id, 1 + l.id % 20,
           CASE WHEN l.kind <> 'pending' THEN 1 + (l.id + 1) % 20 END,
           CASE WHEN l.kind IN ('approved2', 'active', 'completed')
                THEN CASE WHEN l.kind = 'approved2' THEN now() - interval '1 day'
                          ELSE ((current_date - make_interval(months => l.age))::date - 2)::timestamptz END END,
           CASE WHEN l.kind IN ('approved2', 'active', 'completed') THEN 1 + (l.id + 2) % 20 END
      FROM gen_loan l;

    -- The schedule: principal split evenly, the last installment takes the
    -- rounding; simple interest spread evenly. Installment k of an active or
    -- completed loan is due (k - age) months from today, less a day.
    INSERT INTO loans_paymentschedule (id, sequence, due_date, principal_amount, interest_amount, total_amount,
                                       status, paid_at, created_at, loan_application_id)
    SELECT row_number() OVER (ORDER BY l.id, k), k, d.due,
           p.principal, p.interest, p.principal + p.interest,
           CASE WHEN d.due >= current_date THEN 'due'
                WHEN l.delinquent AND l.kind = 'active' AND k > l.age - (1 + l.id % 2) THEN 'overdue'
                ELSE 'paid' END,
           NULL, now(), l.id
      FROM gen_loan l
     CROSS JOIN LATERAL generate_series(1, l.n) k
     CROSS JOIN LATERAL (SELECT CASE WHEN l.kind = 'approved2' THEN (current_date + make_interval(months => k))::date
                                     ELSE (current_date + make_interval(months => k - l.age))::date - 1 END AS due) d
     CROSS JOIN LATERAL (SELECT CASE WHEN k < l.n THEN round((l.amount - l.down) / l.n, 2)
                                     ELSE (l.amount - l.down) - (l.n - 1) * round((l.amount - l.down) / l.n, 2) END AS principal,
                                round((l.amount - l.down) * l.rate / 100 * l.years / l.n, 2) AS interest) p
     WHERE l.kind IN ('approved2', 'active', 'completed');

    -- One payment per paid installment, equal to it, on or a little before its due date.
    INSERT INTO payments_payment (id, amount, payment_date, reference, notes, recorded_at, loan_application_id,
        recorded_by_id, schedule_id, bank_name, bank_reference, check_date, check_number, payment_method,
        reconciled, reconciled_at, reconciled_by_id)
    SELECT s.id, s.total_amount, s.due_date - (s.loan_application_id % 3)::integer, 'PAY-' || s.id, '',
           now(), s.loan_application_id, 1 + s.id % 20, s.id, '', '', NULL, '', 'cash', false, NULL, NULL
      FROM loans_paymentschedule s WHERE s.status = 'paid';
    UPDATE loans_paymentschedule s SET paid_at = p.payment_date::timestamptz + interval '12 hours'
      FROM payments_payment p WHERE p.schedule_id = s.id;

    UPDATE loans_loanapplication l SET completed_at = x.last_paid
      FROM (SELECT loan_application_id, max(paid_at) AS last_paid FROM loans_paymentschedule GROUP BY 1) x
     WHERE l.status = 'completed' AND x.loan_application_id = l.id;

    -- Activation moved one unit to sold; each motor line has room for its open loans.
    UPDATE inventory_stock st SET quantity_sold = x.financed
      FROM (SELECT motor_id, count(*) FILTER (WHERE status IN ('active', 'completed')) AS financed
              FROM loans_loanapplication GROUP BY motor_id) x
     WHERE x.motor_id = st.id;
    UPDATE inventory_motor m SET quantity = 1 + coalesce(x.open, 0)
      FROM (SELECT motor_id, count(*) FILTER (WHERE status IN ('pending', 'approved', 'active')) AS open
              FROM loans_loanapplication GROUP BY motor_id) x
     WHERE x.motor_id = m.id;

    PERFORM setval(pg_get_serial_sequence(t, 'id'), (SELECT coalesce(max(id), 0) + 1 FROM users_user), false)
       FROM (VALUES ('users_user')) v(t);
    PERFORM setval(pg_get_serial_sequence('loans_paymentschedule', 'id'),
                   (SELECT coalesce(max(id), 0) + 1 FROM loans_paymentschedule), false);
    PERFORM setval(pg_get_serial_sequence('payments_payment', 'id'),
                   (SELECT coalesce(max(id), 0) + 1 FROM payments_payment), false);

    INSERT INTO motofinai_gen.expected (code, entity, entity_id, injected)
    SELECT DISTINCT 'overdue', 'loan', loan_application_id, false
      FROM loans_paymentschedule WHERE status = 'overdue';
END
$gen$;

-- Pick k loans of a kind whose loan and motor no injection has touched, and mark both used.
--   pending | approved1 | approved2 | completed
--   active      not delinquent, at least two installments paid and two to come
--   delinquent  active with overdue installments
CREATE OR REPLACE FUNCTION motofinai_gen.pick(kind text, k integer) RETURNS SETOF bigint
LANGUAGE plpgsql AS $pick$
DECLARE
    picked bigint[];
BEGIN
    SELECT array_agg(id) INTO picked FROM (
        SELECT DISTINCT ON (l.motor_id) l.id
          FROM loans_loanapplication l
         WHERE NOT EXISTS (SELECT FROM motofinai_gen.used u WHERE u.kind = 'loan' AND u.id = l.id)
           AND NOT EXISTS (SELECT FROM motofinai_gen.used u WHERE u.kind = 'motor' AND u.id = l.motor_id)
           AND CASE pick.kind
                 WHEN 'pending' THEN l.status = 'pending'
                 WHEN 'approved1' THEN l.status = 'approved' AND l.second_approval_by_id IS NULL
                 WHEN 'approved2' THEN l.status = 'approved' AND l.second_approval_by_id IS NOT NULL
                 WHEN 'completed' THEN l.status = 'completed'
                 WHEN 'active' THEN l.status = 'active' AND l.id % 7 <> 0
                      AND (SELECT count(*) FILTER (WHERE s.status = 'paid') >= 2
                              AND count(*) FILTER (WHERE s.status = 'due') >= 2
                             FROM loans_paymentschedule s WHERE s.loan_application_id = l.id)
                 WHEN 'delinquent' THEN l.status = 'active'
                      AND EXISTS (SELECT FROM loans_paymentschedule s
                                   WHERE s.loan_application_id = l.id AND s.status = 'overdue')
               END
         ORDER BY l.motor_id, l.id) x
      LIMIT k;
    picked := picked[1:k];
    IF coalesce(array_length(picked, 1), 0) < k THEN
        RAISE EXCEPTION 'generator: not enough unused % loans for % injections; generate more loans', kind, k;
    END IF;
    INSERT INTO motofinai_gen.used SELECT 'loan', unnest(picked);
    INSERT INTO motofinai_gen.used SELECT DISTINCT 'motor', motor_id FROM loans_loanapplication WHERE id = ANY (picked);
    RETURN QUERY SELECT unnest(picked);
END
$pick$;

-- Pick k motors no injection has touched, that finance loans when `financing`, and mark them used.
CREATE OR REPLACE FUNCTION motofinai_gen.pick_motor(k integer, financing boolean) RETURNS SETOF bigint
LANGUAGE plpgsql AS $pick$
DECLARE
    picked bigint[];
BEGIN
    SELECT array_agg(id ORDER BY id) INTO picked FROM (
        SELECT m.id FROM inventory_motor m
         WHERE NOT EXISTS (SELECT FROM motofinai_gen.used u WHERE u.kind = 'motor' AND u.id = m.id)
           AND btrim(m.chassis_number) <> ''
           AND NOT EXISTS (SELECT FROM loans_loanapplication l JOIN motofinai_gen.used u
                            ON u.kind = 'loan' AND u.id = l.id WHERE l.motor_id = m.id)
           AND (NOT financing OR EXISTS (SELECT FROM loans_loanapplication l
                                          WHERE l.motor_id = m.id AND l.status = 'active'))
         ORDER BY m.id LIMIT k) x;
    IF coalesce(array_length(picked, 1), 0) < k THEN
        RAISE EXCEPTION 'generator: not enough unused motors for % injections; generate more loans', k;
    END IF;
    INSERT INTO motofinai_gen.used SELECT 'motor', unnest(picked);
    RETURN QUERY SELECT unnest(picked);
END
$pick$;

CREATE OR REPLACE FUNCTION motofinai_gen.expect(code text, entity text, ids bigint[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO motofinai_gen.expected (code, entity, entity_id) SELECT code, entity, unnest(ids)
$$;

-- Inject k cases of every defect and record every finding each must cause.
-- Runs with triggers off (session_replication_role = replica), as data that
-- goes wrong in real life is loaded: foreign keys and versioning do not fire.
CREATE OR REPLACE FUNCTION motofinai_gen.inject(k integer) RETURNS void
LANGUAGE plpgsql AS $inj$
DECLARE
    ids bigint[];
    ids2 bigint[];
    missing constant bigint := 900000000;
BEGIN
    SET LOCAL session_replication_role = replica;

    -- loan family ---------------------------------------------------------
    ids := ARRAY(SELECT motofinai_gen.pick('pending', k));
    UPDATE loans_loanapplication SET motor_id = missing + id WHERE id = ANY (ids);
    PERFORM motofinai_gen.expect('motor_missing', 'loan', ids);

    ids := ARRAY(SELECT motofinai_gen.pick('pending', k));
    UPDATE loans_loanapplication SET applicant_email = '  ' WHERE id = ANY (ids);
    PERFORM motofinai_gen.expect('applicant_contact_incomplete', 'loan', ids);

    ids := ARRAY(SELECT motofinai_gen.pick('pending', k));
    INSERT INTO users_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,
                            is_active, date_joined, role)
    SELECT 1000 + i, '!', false, 'gone' || i, 'Gone', 'Clerk', 'gone@motofinai.example', true, false, now(), 'staff'
      FROM unnest(ids) i;
    UPDATE loans_loanapplication SET submitted_by_id = 1000 + id WHERE id = ANY (ids);
    PERFORM motofinai_gen.expect('submitter_inactive', 'loan', ids);

    ids := ARRAY(SELECT motofinai_gen.pick('pending', k));
    UPDATE loans_loanapplication SET principal_amount = principal_amount + 1 WHERE id = ANY (ids);
    PERFORM motofinai_gen.expect('principal_mismatch', 'loan', ids);

    ids := ARRAY(SELECT motofinai_gen.pick('approved2', k));
    UPDATE loans_paymentschedule SET principal_amount = principal_amount + 0.01
     WHERE loan_application_id = ANY (ids) AND sequence = 2;
    PERFORM motofinai_gen.expect('schedule_total_mismatch', 'loan', ids);

    ids := ARRAY(SELECT motofinai_gen.pick('approved2', k));
    DELETE FROM loans_paymentschedule WHERE loan_application_id = ANY (ids);
    PERFORM motofinai_gen.expect('schedule_missing', 'loan', ids);

    ids := ARRAY(SELECT motofinai_gen.pick('approved2', k));
    UPDATE loans_paymentschedule s SET sequence = l.n + 1
      FROM (SELECT loan_application_id, count(*) AS n FROM loans_paymentschedule
             WHERE loan_application_id = ANY (ids) GROUP BY 1) l
     WHERE s.loan_application_id = l.loan_application_id AND s.sequence = 3;
    PERFORM motofinai_gen.expect('schedule_sequence_gap', 'loan', ids);

    -- Overpaying a completed loan: its last payment is one peso too much.
    ids := ARRAY(SELECT motofinai_gen.pick('completed', k));
    ids2 := ARRAY(SELECT DISTINCT ON (p.loan_application_id) p.id FROM payments_payment p
                   WHERE p.loan_application_id = ANY (ids) ORDER BY p.loan_application_id, p.id DESC);
    UPDATE payments_payment SET amount = amount + 1 WHERE id = ANY (ids2);
    PERFORM motofinai_gen.expect('overpaid', 'loan', ids);
    PERFORM motofinai_gen.expect('amount_differs_from_schedule', 'payment', ids2);

    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    UPDATE loans_loanapplication SET status = 'completed', completed_at = now() WHERE id = ANY (ids);
    PERFORM motofinai_gen.expect('completed_not_paid', 'loan', ids);

    ids := ARRAY(SELECT motofinai_gen.pick('completed', k));
    UPDATE loans_loanapplication SET status = 'active', completed_at = NULL WHERE id = ANY (ids);
    PERFORM motofinai_gen.expect('paid_not_completed', 'loan', ids);

    -- The next installment falls due yesterday and the job marked it overdue.
    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    UPDATE loans_paymentschedule s SET due_date = current_date - 1, status = 'overdue'
      FROM (SELECT loan_application_id, min(sequence) AS seq FROM loans_paymentschedule
             WHERE loan_application_id = ANY (ids) AND status = 'due' GROUP BY 1) n
     WHERE s.loan_application_id = n.loan_application_id AND s.sequence = n.seq;
    PERFORM motofinai_gen.expect('overdue', 'loan', ids);

    -- The job missed a delinquent loan's installment (it is also still overdue, naturally).
    ids := ARRAY(SELECT motofinai_gen.pick('delinquent', k));
    UPDATE loans_paymentschedule s SET status = 'due'
      FROM (SELECT loan_application_id, min(sequence) AS seq FROM loans_paymentschedule
             WHERE loan_application_id = ANY (ids) AND status = 'overdue' GROUP BY 1) n
     WHERE s.loan_application_id = n.loan_application_id AND s.sequence = n.seq;
    PERFORM motofinai_gen.expect('overdue_status_stale', 'loan', ids);

    -- A payment lost: its installment stays marked paid.
    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT DISTINCT ON (s.loan_application_id) s.id FROM loans_paymentschedule s
                   WHERE s.loan_application_id = ANY (ids) AND s.status = 'paid'
                   ORDER BY s.loan_application_id, s.sequence);
    DELETE FROM payments_payment WHERE schedule_id = ANY (ids2);
    PERFORM motofinai_gen.expect('schedule_paid_without_payment', 'schedule', ids2);

    -- A prepayment recorded today on the next installment, which was not marked paid.
    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT DISTINCT ON (s.loan_application_id) s.id FROM loans_paymentschedule s
                   WHERE s.loan_application_id = ANY (ids) AND s.status = 'due'
                   ORDER BY s.loan_application_id, s.sequence);
    INSERT INTO payments_payment (amount, payment_date, reference, notes, recorded_at, loan_application_id,
        recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
    SELECT s.total_amount, current_date, 'PRE-' || s.id, '', now(), s.loan_application_id, 1, s.id, '', '', '',
           'cash', false
      FROM loans_paymentschedule s WHERE s.id = ANY (ids2);
    PERFORM motofinai_gen.expect('payment_not_applied', 'schedule', ids2);

    -- payment family ------------------------------------------------------
    -- Each victim is the first payment of an unused active loan.
    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT min(id) FROM payments_payment WHERE loan_application_id = ANY (ids) GROUP BY loan_application_id);
    UPDATE payments_payment SET loan_application_id = missing + id WHERE id = ANY (ids2);
    PERFORM motofinai_gen.expect('loan_missing', 'payment', ids2);
    PERFORM motofinai_gen.expect('schedule_loan_mismatch', 'payment', ids2);

    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT min(id) FROM payments_payment WHERE loan_application_id = ANY (ids) GROUP BY loan_application_id);
    PERFORM motofinai_gen.expect('schedule_paid_without_payment', 'schedule',
                                 ARRAY(SELECT schedule_id FROM payments_payment WHERE id = ANY (ids2)));
    UPDATE payments_payment SET schedule_id = missing + id WHERE id = ANY (ids2);
    PERFORM motofinai_gen.expect('installment_missing', 'payment', ids2);

    -- Recorded on the wrong loan: another active loan of a different amount
    -- (so no duplicate), activated before the payment and owing more than it
    -- (so not overpaid by it).
    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT min(id) FROM payments_payment WHERE loan_application_id = ANY (ids) GROUP BY loan_application_id);
    UPDATE payments_payment p SET loan_application_id = (
        SELECT t.id FROM loans_loanapplication t, loans_loanapplication o
         WHERE o.id = p.loan_application_id AND t.id <> o.id AND t.status = 'active'
           AND t.loan_amount <> o.loan_amount AND t.activated_at::date <= p.payment_date
           AND (SELECT sum(total_amount) FROM loans_paymentschedule s
                 WHERE s.loan_application_id = t.id AND s.status <> 'paid') >= p.amount
           AND NOT EXISTS (SELECT FROM motofinai_gen.used u WHERE u.kind = 'loan' AND u.id = t.id)
         ORDER BY t.id LIMIT 1)
     WHERE p.id = ANY (ids2);
    INSERT INTO motofinai_gen.used SELECT 'loan', loan_application_id FROM payments_payment WHERE id = ANY (ids2)
        ON CONFLICT DO NOTHING;
    PERFORM motofinai_gen.expect('schedule_loan_mismatch', 'payment', ids2);

    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT min(id) FROM payments_payment WHERE loan_application_id = ANY (ids) GROUP BY loan_application_id);
    UPDATE payments_payment SET payment_date = current_date + 10 WHERE id = ANY (ids2);
    PERFORM motofinai_gen.expect('future_payment_date', 'payment', ids2);

    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT min(id) FROM payments_payment WHERE loan_application_id = ANY (ids) GROUP BY loan_application_id);
    UPDATE payments_payment SET amount = round(amount * 1.2, 2) WHERE id = ANY (ids2);
    PERFORM motofinai_gen.expect('amount_exceeds_schedule', 'payment', ids2);

    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT min(id) FROM payments_payment WHERE loan_application_id = ANY (ids) GROUP BY loan_application_id);
    UPDATE payments_payment SET amount = amount - 1 WHERE id = ANY (ids2);
    PERFORM motofinai_gen.expect('amount_differs_from_schedule', 'payment', ids2);

    -- A bank transfer entered twice: a loan's first two payments carry the
    -- same (bank_name, bank_reference); on other loans, the same cheque
    -- (bank_name, check_number). Same loan, amount and date alone is not a
    -- duplicate (two equal installments paid at once), so dates stay as they are.
    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT motofinai_gen.pick('active', k));
    UPDATE payments_payment p SET bank_name = CASE WHEN p.loan_application_id = ANY (ids) THEN 'BDO' ELSE 'BPI' END,
           bank_reference = CASE WHEN p.loan_application_id = ANY (ids) THEN 'TRX-' || p.loan_application_id ELSE '' END,
           check_number = CASE WHEN p.loan_application_id = ANY (ids2) THEN 'CHK-' || p.loan_application_id ELSE '' END,
           payment_method = CASE WHEN p.loan_application_id = ANY (ids) THEN 'bank_transfer' ELSE 'check' END
     WHERE p.id IN (SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY loan_application_id ORDER BY id) AS r
                                      FROM payments_payment WHERE loan_application_id = ANY (ids || ids2)) x
                     WHERE r <= 2);
    PERFORM motofinai_gen.expect('possible_duplicate', 'payment',
        ARRAY(SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY loan_application_id ORDER BY id) AS r
                                FROM payments_payment WHERE loan_application_id = ANY (ids || ids2)) x WHERE r <= 2));

    -- One bank reference used for payments of two different loans.
    ids := ARRAY(SELECT motofinai_gen.pick('active', 2 * k));
    ids2 := ARRAY(SELECT min(id) FROM payments_payment WHERE loan_application_id = ANY (ids)
                   GROUP BY loan_application_id ORDER BY loan_application_id);
    UPDATE payments_payment p SET reference = 'BANK-' || (x.r + 1) / 2
      FROM (SELECT id, row_number() OVER (ORDER BY id) AS r FROM unnest(ids2) id) x
     WHERE p.id = x.id;
    PERFORM motofinai_gen.expect('possible_duplicate', 'payment', ids2);

    ids := ARRAY(SELECT motofinai_gen.pick('active', k));
    ids2 := ARRAY(SELECT min(id) FROM payments_payment WHERE loan_application_id = ANY (ids) GROUP BY loan_application_id);
    UPDATE payments_payment p SET payment_date = l.activated_at::date - 5
      FROM loans_loanapplication l WHERE l.id = p.loan_application_id AND p.id = ANY (ids2);
    PERFORM motofinai_gen.expect('payment_before_activation', 'payment', ids2);

    -- inventory family ----------------------------------------------------
    -- A second motor carries the first one's VIN, in lower case with spaces.
    ids := ARRAY(SELECT motofinai_gen.pick_motor(2 * k, false));
    UPDATE inventory_motor m SET chassis_number = '  ' || lower(o.chassis_number) || ' '
      FROM inventory_motor o, generate_series(1, k) i
     WHERE m.id = ids[2 * i] AND o.id = ids[2 * i - 1];
    PERFORM motofinai_gen.expect('duplicate_vin', 'motor', ids);

    ids := ARRAY(SELECT motofinai_gen.pick_motor(k, false));
    UPDATE inventory_motor SET chassis_number = 'VIN-' || id WHERE id = ANY (ids);
    PERFORM motofinai_gen.expect('invalid_vin', 'motor', ids);

    ids := ARRAY(SELECT motofinai_gen.pick_motor(k, true));
    UPDATE inventory_motor m SET quantity = x.open - 1
      FROM (SELECT motor_id, count(*) AS open FROM loans_loanapplication
             WHERE status IN ('pending', 'approved', 'active') GROUP BY 1) x
     WHERE m.id = ANY (ids) AND x.motor_id = m.id;
    PERFORM motofinai_gen.expect('over_assigned', 'motor', ids);

    -- A financing motor whose approval was withdrawn: the motor and each of its financed loans.
    ids := ARRAY(SELECT motofinai_gen.pick_motor(k, true));
    UPDATE inventory_motor SET approval_status = 'pending' WHERE id = ANY (ids);
    PERFORM motofinai_gen.expect('unapproved_motor_financed', 'motor', ids);
    PERFORM motofinai_gen.expect('unapproved_motor_financed', 'loan',
        ARRAY(SELECT id FROM loans_loanapplication WHERE motor_id = ANY (ids) AND status IN ('active', 'completed')));

    ids := ARRAY(SELECT motofinai_gen.pick_motor(k, true));
    UPDATE inventory_stock st SET quantity_sold = quantity_sold - 1 FROM inventory_motor m
     WHERE m.id = ANY (ids) AND st.id = m.stock_id;
    PERFORM motofinai_gen.expect('stock_sold_mismatch', 'stock', ARRAY(SELECT stock_id FROM inventory_motor WHERE id = ANY (ids)));

    -- system: orphans the injections above made, and the foreign keys they break.
    ids := ARRAY(SELECT motofinai_gen.pick('pending', k));
    INSERT INTO repossession_repossessioncase (status, overdue_installments, total_overdue_amount, resolution_notes,
                                               created_at, updated_at, loan_application_id)
    SELECT 'open', 0, 0, '', now(), now(), missing + i FROM unnest(ids) i;
    INSERT INTO loans_paymentschedule (sequence, due_date, principal_amount, interest_amount, total_amount, status,
                                       created_at, loan_application_id)
    SELECT 1, current_date + 30, 100, 0, 100, 'due', now(), missing + i FROM unnest(ids) i;

    INSERT INTO motofinai_gen.expected (code, entity, subject)
    SELECT 'orphaned_rows', 'table', rel FROM (VALUES
        ('payments_payment.loan_application_id'), ('payments_payment.schedule_id'),
        ('loans_loanapplication.motor_id'), ('repossession_repossessioncase.loan_application_id'),
        ('loans_paymentschedule.loan_application_id')) v(rel)
     WHERE k > 0;
    INSERT INTO motofinai_gen.expected (code, entity, subject)
    SELECT 'foreign_key_violation', 'constraint', c.conname
      FROM pg_constraint c
     WHERE c.contype = 'f' AND k > 0
       AND (c.conrelid, (SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = c.conkey[1])) IN (
           ('payments_payment'::regclass, 'loan_application_id'), ('payments_payment'::regclass, 'schedule_id'),
           ('loans_loanapplication'::regclass, 'motor_id'),
           ('repossession_repossessioncase'::regclass, 'loan_application_id'),
           ('loans_paymentschedule'::regclass, 'loan_application_id'));
END
$inj$;
