-- Seeded injection of OVERLAPPING defects into a clean generated dataset.
--
--   SELECT mfc_random.inject(seed => 0.42, n_ops => 40);
--
-- Unlike motofinai_gen.inject, which keeps every defect on its own loan, the
-- defects here all land on a small "hot" pool of loans, their installments,
-- payments and motors, so one loan, installment, payment or motor gets
-- several. Each op records the finding it must cause (mfc_random.injected),
-- and whether the oracle shows it right after the op (present_after_op): a
-- finding that is there then but not at the end was masked by a later op.
-- Runs with triggers off (session_replication_role = replica), as the
-- generator's injections do. A seed replays the same ops on the same
-- generated dataset. Expects the Motofinai tables and mfc_oracle (oracle.sql).

CREATE SCHEMA IF NOT EXISTS mfc_random;

-- pool 'main' takes every op; pool 'fix', a few loans only the fixable ops
-- touch (so that some loans can be repaired even under enforcement); pool
-- 'lone', payments of a few loans that get one payment defect each and
-- nothing else (the system check must find a defect no other rule flags on
-- its loan too).
CREATE TABLE IF NOT EXISTS mfc_random.hot (kind text NOT NULL, id bigint NOT NULL, pool text NOT NULL DEFAULT 'main',
                                           PRIMARY KEY (kind, id));
-- Every loan, payment and motor an op changed (or changed the findings of).
CREATE TABLE IF NOT EXISTS mfc_random.touched (kind text NOT NULL, id bigint NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS mfc_random.ops (op integer PRIMARY KEY, name text NOT NULL, target text);
CREATE TABLE IF NOT EXISTS mfc_random.injected (
    op integer NOT NULL, code text NOT NULL, entity text NOT NULL, entity_id bigint, subject text,
    present_after_op boolean
);

CREATE OR REPLACE FUNCTION mfc_random.table_of(kind text) RETURNS regclass LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind WHEN 'loan' THEN 'loans_loanapplication' WHEN 'schedule' THEN 'loans_paymentschedule'
                     WHEN 'payment' THEN 'payments_payment' WHEN 'motor' THEN 'inventory_motor' END::regclass
$$;

-- A random hot entity of a kind whose row (alias t) satisfies cond; raises
-- no_data_found if none (apply_op then undoes the op and reports false).
-- Candidates are ordered by id, so a seed replays the same choices.
CREATE OR REPLACE FUNCTION mfc_random.pick(kind text, cond text DEFAULT 'true', pool text DEFAULT 'main') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    EXECUTE format('SELECT array_agg(h.id ORDER BY h.id) FROM mfc_random.hot h JOIN %s t ON t.id = h.id
                     WHERE h.kind = %L AND h.pool = %L AND (%s)', mfc_random.table_of(kind), kind, pool, cond) INTO ids;
    IF ids IS NULL THEN
        RAISE EXCEPTION 'no % fits', kind USING ERRCODE = 'no_data_found';
    END IF;
    RETURN ids[1 + floor(random() * array_length(ids, 1))::int];
END
$$;

-- A payment of a pool; from pool 'lone', its loan's other lone payments
-- leave the pool (one defect per lone loan).
CREATE OR REPLACE FUNCTION mfc_random.pick_payment(cond text, pool text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    t constant bigint := mfc_random.pick('payment', cond, pool);
BEGIN
    IF pool = 'lone' THEN
        DELETE FROM mfc_random.hot h USING payments_payment p, payments_payment o
         WHERE h.pool = 'lone' AND h.kind = 'payment' AND h.id = p.id AND o.id = t
           AND p.loan_application_id = o.loan_application_id;
    END IF;
    RETURN t;
END
$$;

-- A random element of an array (NULL for an empty one).
CREATE OR REPLACE FUNCTION mfc_random.one_of(a anyarray) RETURNS anyelement LANGUAGE sql AS $$
    SELECT a[1 + floor(random() * coalesce(array_length(a, 1), 0))::int]
$$;

CREATE OR REPLACE FUNCTION mfc_random.expect(op integer, code text, entity text, id bigint, subject text DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO mfc_random.injected (op, code, entity, entity_id, subject) VALUES (op, code, entity, id, subject)
$$;

CREATE OR REPLACE FUNCTION mfc_random.touch(kind text, id bigint) RETURNS void LANGUAGE sql AS $$
    INSERT INTO mfc_random.touched VALUES (kind, id) ON CONFLICT DO NOTHING
$$;

-- Touch a loan and its motor (their findings change together).
CREATE OR REPLACE FUNCTION mfc_random.touch_loan(id bigint) RETURNS void LANGUAGE sql AS $$
    SELECT mfc_random.touch('loan', id);
    SELECT mfc_random.touch('motor', l.motor_id) FROM loans_loanapplication l WHERE l.id = touch_loan.id;
$$;

-- The hot pool: a few loans of each status, three installments and two
-- payments of each, their motors; and the fix pool's loans and installments.
CREATE OR REPLACE FUNCTION mfc_random.choose_hot() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    want record;
    loan bigint;
BEGIN
    FOR want IN SELECT * FROM (VALUES ('active', 4, 'main'), ('completed', 3, 'main'), ('approved', 2, 'main'),
                                      ('pending', 1, 'main'), ('any', 2, 'main'), ('active', 2, 'fix'),
                                      ('completed', 1, 'fix'), ('active', 4, 'lone'), ('completed', 2, 'lone'))
                               v(status, k, pool) LOOP
        FOR i IN 1 .. want.k LOOP
            loan := mfc_random.one_of(ARRAY(
                SELECT l.id FROM loans_loanapplication l
                 WHERE (want.status = 'any' OR l.status = want.status)
                   AND NOT EXISTS (SELECT FROM mfc_random.hot h WHERE h.kind = 'loan' AND h.id = l.id)
                   AND NOT EXISTS (SELECT FROM mfc_random.hot h JOIN payments_payment p ON p.id = h.id
                                    WHERE h.kind = 'payment' AND p.loan_application_id = l.id)
                 ORDER BY l.id));
            IF want.pool = 'lone' THEN
                INSERT INTO mfc_random.hot SELECT 'payment', p.id, 'lone' FROM payments_payment p
                 WHERE p.loan_application_id = loan ORDER BY random() LIMIT 2;
                CONTINUE;
            END IF;
            INSERT INTO mfc_random.hot VALUES ('loan', loan, want.pool);
            INSERT INTO mfc_random.hot SELECT 'schedule', s.id, want.pool FROM loans_paymentschedule s
             WHERE s.loan_application_id = loan ORDER BY random() LIMIT 3;
            CONTINUE WHEN want.pool = 'fix';
            INSERT INTO mfc_random.hot SELECT 'payment', p.id FROM payments_payment p
             WHERE p.loan_application_id = loan ORDER BY random() LIMIT 2;
            INSERT INTO mfc_random.hot SELECT 'motor', l.motor_id FROM loans_loanapplication l WHERE l.id = loan
                ON CONFLICT DO NOTHING;
        END LOOP;
    END LOOP;
END
$$;

-- Apply one op; false when no hot entity fits it (the caller draws another).
CREATE OR REPLACE FUNCTION mfc_random.apply_op(op integer, name text) RETURNS boolean
LANGUAGE plpgsql AS $op$
DECLARE
    missing constant bigint := 900000000;
    has_loan constant text := 'EXISTS (SELECT FROM loans_loanapplication l WHERE l.id = t.loan_application_id)';
    has_installment constant text := 'EXISTS (SELECT FROM loans_paymentschedule s WHERE s.id = t.schedule_id)';
    no_payment constant text := 'NOT EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = t.id)';
    t bigint;
    t2 bigint;
    loan bigint;
    v text;
    -- The fixable ops work on either pool.
    pool constant text := CASE WHEN name IN ('reactivate_paid', 'stale', 'unapplied', 'pay_remaining')
                                    AND random() < 0.5 THEN 'fix'
                               WHEN name IN ('payment_loan_missing', 'payment_installment_missing', 'future_date',
                                             'amount_high', 'amount_low', 'before_activation')
                                    AND random() < 0.4 THEN 'lone'
                               ELSE 'main' END;
BEGIN
    CASE name
    -- loan family -----------------------------------------------------------
    WHEN 'motor_missing' THEN
        t := mfc_random.pick('loan');
        PERFORM mfc_random.touch_loan(t);
        UPDATE loans_loanapplication SET motor_id = missing + id WHERE id = t;
        PERFORM mfc_random.expect(op, 'motor_missing', 'loan', t);
    WHEN 'contact_blank' THEN
        t := mfc_random.pick('loan');
        EXECUTE format('UPDATE loans_loanapplication SET %I = %L WHERE id = %s',
                       mfc_random.one_of(ARRAY['applicant_first_name', 'applicant_last_name',
                                               'applicant_email', 'applicant_phone']),
                       mfc_random.one_of(ARRAY['', '   ']), t);
        PERFORM mfc_random.expect(op, 'applicant_contact_incomplete', 'loan', t);
    WHEN 'submitter_inactive' THEN
        t := mfc_random.pick('loan', $$t.status <> 'completed'$$);
        INSERT INTO users_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,
                                is_active, date_joined, role)
        VALUES (10000 + op, '!', false, 'gone' || op, 'Gone', 'Clerk', 'gone@motofinai.example', true, false,
                now(), 'staff');
        UPDATE loans_loanapplication SET submitted_by_id = 10000 + op WHERE id = t;
        PERFORM mfc_random.expect(op, 'submitter_inactive', 'loan', t);
    WHEN 'principal_off' THEN
        t := mfc_random.pick('loan');
        IF random() < 0.7 THEN
            UPDATE loans_loanapplication SET principal_amount = loan_amount - down_payment + 1 + floor(random() * 99)
             WHERE id = t;
        ELSE
            UPDATE loans_loanapplication SET down_payment = loan_amount + 1 WHERE id = t;
        END IF;
        PERFORM mfc_random.expect(op, 'principal_mismatch', 'loan', t);
    WHEN 'schedule_principal_off' THEN
        -- Whatever earlier ops did, the schedule ends up a few cents off the loan's principal.
        t := mfc_random.pick('schedule', has_loan);
        SELECT s.loan_application_id INTO loan FROM loans_paymentschedule s WHERE s.id = t;
        UPDATE loans_paymentschedule s
           SET principal_amount = s.principal_amount + 0.01 * (1 + floor(random() * 5))
               + (SELECT l.principal_amount FROM loans_loanapplication l WHERE l.id = loan)
               - (SELECT sum(o.principal_amount) FROM loans_paymentschedule o WHERE o.loan_application_id = loan)
         WHERE s.id = t;
        PERFORM mfc_random.expect(op, 'schedule_total_mismatch', 'loan', loan);
    WHEN 'schedule_delete' THEN
        t := mfc_random.pick('loan', $$t.status = 'active'
                                       OR (t.status = 'approved' AND t.second_approval_by_id IS NOT NULL)$$);
        PERFORM mfc_random.touch('payment', p.id) FROM payments_payment p
          JOIN loans_paymentschedule s ON s.id = p.schedule_id WHERE s.loan_application_id = t;
        DELETE FROM loans_paymentschedule WHERE loan_application_id = t;
        PERFORM mfc_random.expect(op, 'schedule_missing', 'loan', t);
    WHEN 'sequence_gap' THEN
        t := mfc_random.pick('schedule', has_loan);
        SELECT s.loan_application_id INTO loan FROM loans_paymentschedule s WHERE s.id = t;
        UPDATE loans_paymentschedule s
           SET sequence = 1 + floor(random() * 3)
               + (SELECT max(o.sequence) FROM loans_paymentschedule o WHERE o.loan_application_id = loan)
         WHERE s.id = t;
        PERFORM mfc_random.expect(op, 'schedule_sequence_gap', 'loan', loan);
    WHEN 'duplicate_sequence' THEN
        -- Possible only once the unique index is gone (mfc_random.setup_system).
        IF EXISTS (SELECT FROM pg_constraint WHERE conname = 'loans_paymentschedule_loan_application_id_sequ_eb8fd6b1_uniq') THEN
            RETURN false;
        END IF;
        t := mfc_random.pick('schedule', has_loan || ' AND (SELECT count(*) FROM loans_paymentschedule o
                                                         WHERE o.loan_application_id = t.loan_application_id) > 1');
        SELECT s.loan_application_id INTO loan FROM loans_paymentschedule s WHERE s.id = t;
        v := mfc_random.one_of(ARRAY(SELECT o.sequence::text FROM loans_paymentschedule o
                                      WHERE o.loan_application_id = loan AND o.id <> t ORDER BY o.id));
        UPDATE loans_paymentschedule SET sequence = v::integer WHERE id = t;
        PERFORM mfc_random.expect(op, 'duplicate_installment_sequence', 'loan', loan, v);
        PERFORM mfc_random.expect(op, 'schedule_sequence_gap', 'loan', loan);
    WHEN 'overpay' THEN
        t := mfc_random.pick('payment', has_loan);
        SELECT p.loan_application_id INTO loan FROM payments_payment p WHERE p.id = t;
        UPDATE payments_payment SET amount = amount + 1 + floor(random() * 10)
               + greatest(mfc_oracle.owed(loan) - mfc_oracle.paid(loan), 0)
         WHERE id = t;
        PERFORM mfc_random.expect(op, 'overpaid', 'loan', loan);
    WHEN 'complete_unpaid' THEN
        t := mfc_random.pick('loan', $$t.status <> 'completed' AND EXISTS (SELECT FROM loans_paymentschedule s
                                        WHERE s.loan_application_id = t.id AND s.status <> 'paid')$$);
        PERFORM mfc_random.touch_loan(t);
        UPDATE loans_loanapplication SET status = 'completed', completed_at = now() WHERE id = t;
        PERFORM mfc_random.expect(op, 'completed_not_paid', 'loan', t);
    WHEN 'reactivate_paid' THEN
        t := mfc_random.pick('loan', $$t.status = 'completed'
            AND EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = t.id)
            AND NOT EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = t.id AND s.status <> 'paid')
            AND mfc_oracle.paid(t.id) >= mfc_oracle.owed(t.id)$$, pool);
        PERFORM mfc_random.touch_loan(t);
        UPDATE loans_loanapplication SET status = 'active', completed_at = NULL WHERE id = t;
        PERFORM mfc_random.expect(op, 'paid_not_completed', 'loan', t);
    WHEN 'status_shuffle' THEN
        -- No finding of its own: moves a loan into states the lifecycle never makes.
        t := mfc_random.pick('loan');
        PERFORM mfc_random.touch_loan(t);
        UPDATE loans_loanapplication SET status = mfc_random.one_of(ARRAY['pending', 'approved', 'active', 'completed'])
         WHERE id = t;
    WHEN 'mark_overdue' THEN
        t := mfc_random.pick('schedule', has_loan || $$ AND t.status = 'due'$$);
        UPDATE loans_paymentschedule SET status = 'overdue', due_date = current_date - 1 - floor(random() * 40)::int
         WHERE id = t RETURNING loan_application_id INTO loan;
        PERFORM mfc_random.expect(op, 'overdue', 'loan', loan);
    WHEN 'stale' THEN
        t := mfc_random.pick('schedule', has_loan || ' AND ' || no_payment, pool);
        UPDATE loans_paymentschedule SET status = 'due', paid_at = NULL,
               due_date = current_date - 1 - floor(random() * 40)::int
         WHERE id = t RETURNING loan_application_id INTO loan;
        PERFORM mfc_random.expect(op, 'overdue_status_stale', 'loan', loan);
        PERFORM mfc_random.expect(op, 'overdue', 'loan', loan);
    WHEN 'lose_payment' THEN
        IF random() < 0.6 THEN   -- the payment row is lost
            t := mfc_random.pick('payment', $$EXISTS (SELECT FROM loans_paymentschedule s
                                                     WHERE s.id = t.schedule_id AND s.status = 'paid')$$);
            DELETE FROM payments_payment WHERE id = t RETURNING schedule_id INTO t2;
        ELSE                     -- the installment is marked paid without one
            t2 := mfc_random.pick('schedule', $$t.status <> 'paid' AND $$ || no_payment);
            UPDATE loans_paymentschedule SET status = 'paid', paid_at = now() WHERE id = t2;
        END IF;
        PERFORM mfc_random.expect(op, 'schedule_paid_without_payment', 'schedule', t2);
        t := t2;
    WHEN 'unapplied' THEN
        IF random() < 0.5 THEN   -- the payment's installment is set back to unpaid
            t := mfc_random.pick('schedule', $$t.status = 'paid' AND NOT $$ || no_payment, pool);
            UPDATE loans_paymentschedule SET status = mfc_random.one_of(ARRAY['due', 'overdue']), paid_at = NULL
             WHERE id = t;
        ELSE                     -- a payment is recorded (maybe late) and not applied
            t := mfc_random.pick('schedule', $$t.status <> 'paid' AND $$ || no_payment, pool);
            INSERT INTO payments_payment (amount, payment_date, reference, notes, recorded_at, loan_application_id,
                recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
            SELECT s.total_amount, least(current_date, s.due_date + floor(random() * 20)::int), 'RND-' || op, '', now(),
                   s.loan_application_id, 1, s.id, '', '', '', 'cash', false
              FROM loans_paymentschedule s WHERE s.id = t
            RETURNING id INTO t2;
            INSERT INTO mfc_random.hot VALUES ('payment', t2, pool);
            PERFORM mfc_random.touch('payment', t2);
        END IF;
        PERFORM mfc_random.expect(op, 'payment_not_applied', 'schedule', t);
    WHEN 'pay_remaining' THEN
        -- Every unpaid installment of an active loan gets its payment, none
        -- applied: repairing them makes the loan fully paid (a cascade).
        t := mfc_random.pick('loan', $$t.status = 'active' AND EXISTS (SELECT FROM loans_paymentschedule s
                 WHERE s.loan_application_id = t.id AND s.status <> 'paid' AND NOT EXISTS (
                       SELECT FROM payments_payment p WHERE p.schedule_id = s.id))$$, pool);
        PERFORM mfc_random.expect(op, 'payment_not_applied', 'schedule', s.id) FROM loans_paymentschedule s
          WHERE s.loan_application_id = t AND s.status <> 'paid';
        INSERT INTO payments_payment (amount, payment_date, reference, notes, recorded_at, loan_application_id,
            recorded_by_id, schedule_id, bank_name, bank_reference, check_number, payment_method, reconciled)
        SELECT s.total_amount, least(current_date, s.due_date), 'RND-' || op || '-' || s.sequence, '', now(), t, 1,
               s.id, '', '', '', 'cash', false
          FROM loans_paymentschedule s
         WHERE s.loan_application_id = t AND s.status <> 'paid'
           AND NOT EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id);
    WHEN 'orphan_installment' THEN
        t := mfc_random.pick('schedule');
        UPDATE loans_paymentschedule SET loan_application_id = missing + id WHERE id = t;
        PERFORM mfc_random.expect(op, 'orphaned_rows', 'table', NULL, 'loans_paymentschedule.loan_application_id');
    WHEN 'orphan_repossession' THEN
        INSERT INTO repossession_repossessioncase (status, overdue_installments, total_overdue_amount, resolution_notes,
                                                   created_at, updated_at, loan_application_id)
        VALUES ('open', 0, 0, '', now(), now(), missing + op);
        PERFORM mfc_random.expect(op, 'orphaned_rows', 'table', NULL, 'repossession_repossessioncase.loan_application_id');
    -- payment family --------------------------------------------------------
    WHEN 'payment_loan_missing' THEN
        t := mfc_random.pick_payment('true', pool);
        UPDATE payments_payment SET loan_application_id = missing + id WHERE id = t;
        PERFORM mfc_random.expect(op, 'loan_missing', 'payment', t);
    WHEN 'payment_installment_missing' THEN
        t := mfc_random.pick_payment('true', pool);
        UPDATE payments_payment SET schedule_id = missing + id WHERE id = t;
        PERFORM mfc_random.expect(op, 'installment_missing', 'payment', t);
    WHEN 'payment_wrong_loan' THEN
        t := mfc_random.pick('payment', has_installment);
        loan := mfc_random.pick('loan', format('t.id <> (SELECT s.loan_application_id FROM loans_paymentschedule s
                                                 JOIN payments_payment p ON p.schedule_id = s.id WHERE p.id = %s)', t));
        UPDATE payments_payment SET loan_application_id = loan WHERE id = t;
        PERFORM mfc_random.touch_loan(loan);
        PERFORM mfc_random.expect(op, 'schedule_loan_mismatch', 'payment', t);
    WHEN 'future_date' THEN
        t := mfc_random.pick_payment('true', pool);
        UPDATE payments_payment SET payment_date = current_date + 1 + floor(random() * 30)::int WHERE id = t;
        PERFORM mfc_random.expect(op, 'future_payment_date', 'payment', t);
    WHEN 'amount_high' THEN
        t := mfc_random.pick_payment(has_installment, pool);
        UPDATE payments_payment p SET amount = round(s.total_amount * (1.15 + random() / 2)::numeric, 2)
          FROM loans_paymentschedule s WHERE s.id = p.schedule_id AND p.id = t;
        PERFORM mfc_random.expect(op, 'amount_exceeds_schedule', 'payment', t);
    WHEN 'amount_low' THEN
        t := mfc_random.pick_payment(has_installment, pool);
        UPDATE payments_payment p SET amount = s.total_amount - 1 - floor(random() * 50)
          FROM loans_paymentschedule s WHERE s.id = p.schedule_id AND p.id = t;
        PERFORM mfc_random.expect(op, 'amount_differs_from_schedule', 'payment', t);
    WHEN 'dup_reference', 'dup_bank_reference', 'dup_check' THEN
        t := mfc_random.pick('payment');
        t2 := mfc_random.pick('payment', format('t.id <> %s', t));
        v := mfc_random.one_of(ARRAY['BDO', 'BPI', 'Metrobank']);
        CASE name
        WHEN 'dup_reference' THEN
            UPDATE payments_payment SET reference = 'DUP-' || op WHERE id IN (t, t2);
        WHEN 'dup_bank_reference' THEN
            UPDATE payments_payment SET bank_name = v, bank_reference = 'TRX-' || op WHERE id IN (t, t2);
        ELSE
            UPDATE payments_payment SET bank_name = v, check_number = 'CHK-' || op WHERE id IN (t, t2);
        END CASE;
        PERFORM mfc_random.expect(op, 'possible_duplicate', 'payment', t);
        PERFORM mfc_random.expect(op, 'possible_duplicate', 'payment', t2);
    WHEN 'near_duplicate' THEN
        -- No finding of its own: what the duplicate rule must NOT call a
        -- duplicate (and what the old rule did).
        t := mfc_random.pick('payment');
        t2 := mfc_random.pick('payment', format('t.id <> %s', t));
        CASE floor(random() * 4)
        WHEN 0 THEN   -- same loan, amount and date
            UPDATE payments_payment p SET loan_application_id = q.loan_application_id, amount = q.amount,
                   payment_date = q.payment_date
              FROM payments_payment q WHERE p.id = t AND q.id = t2;
        WHEN 1 THEN   -- same bank reference, no bank name
            UPDATE payments_payment SET bank_name = '', bank_reference = 'TRX-' || op WHERE id IN (t, t2);
        WHEN 2 THEN   -- same cheque number at two different banks
            UPDATE payments_payment SET bank_name = CASE WHEN id = t THEN 'BDO' ELSE 'BPI' END,
                   check_number = 'CHK-' || op WHERE id IN (t, t2);
        ELSE          -- blank references, same bank, blank bank references
            UPDATE payments_payment SET reference = '  ', bank_name = 'BDO', bank_reference = ' ', check_number = ''
             WHERE id IN (t, t2);
        END CASE;
        PERFORM mfc_random.touch('payment', t2);
    WHEN 'before_activation' THEN
        t := mfc_random.pick_payment($$EXISTS (SELECT FROM loans_loanapplication l
                                               WHERE l.id = t.loan_application_id AND l.activated_at IS NOT NULL)$$, pool);
        UPDATE payments_payment p SET payment_date = l.activated_at::date - 1 - floor(random() * 30)::int
          FROM loans_loanapplication l WHERE l.id = p.loan_application_id AND p.id = t;
        PERFORM mfc_random.expect(op, 'payment_before_activation', 'payment', t);
    -- inventory family ------------------------------------------------------
    WHEN 'vin_duplicate' THEN
        t := mfc_random.pick('motor');
        t2 := mfc_random.one_of(ARRAY(SELECT m.id FROM inventory_motor m
                                       WHERE m.id <> t AND btrim(m.chassis_number) <> '' ORDER BY m.id));
        UPDATE inventory_motor m SET chassis_number = '  ' || lower(btrim(o.chassis_number)) || ' '
          FROM inventory_motor o WHERE m.id = t AND o.id = t2;
        INSERT INTO mfc_random.hot VALUES ('motor', t2) ON CONFLICT DO NOTHING;
        PERFORM mfc_random.touch('motor', t2);
        PERFORM mfc_random.expect(op, 'duplicate_vin', 'motor', t);
        PERFORM mfc_random.expect(op, 'duplicate_vin', 'motor', t2);
    WHEN 'vin_invalid' THEN
        t := mfc_random.pick('motor');
        UPDATE inventory_motor SET chassis_number = mfc_random.one_of(ARRAY[
                   'VIN-' || id, 'MFO' || lpad(id::text, 14, '0'), 'MF' || lpad(id::text, 16, '0')])
         WHERE id = t;
        PERFORM mfc_random.expect(op, 'invalid_vin', 'motor', t);
    WHEN 'over_assign' THEN
        t := mfc_random.pick('motor', $$EXISTS (SELECT FROM loans_loanapplication l
                                               WHERE l.motor_id = t.id AND l.status IN ('pending', 'approved', 'active'))$$);
        UPDATE inventory_motor m SET quantity = floor(random() * (SELECT count(*) FROM loans_loanapplication l
                                      WHERE l.motor_id = m.id AND l.status IN ('pending', 'approved', 'active')))
         WHERE m.id = t;
        PERFORM mfc_random.expect(op, 'over_assigned', 'motor', t);
    WHEN 'unapprove' THEN
        t := mfc_random.pick('motor', $$EXISTS (SELECT FROM loans_loanapplication l
                                               WHERE l.motor_id = t.id AND l.status IN ('active', 'completed'))$$);
        UPDATE inventory_motor SET approval_status = mfc_random.one_of(ARRAY['pending', 'rejected']) WHERE id = t;
        PERFORM mfc_random.expect(op, 'unapproved_motor_financed', 'motor', t);
        PERFORM mfc_random.expect(op, 'unapproved_motor_financed', 'loan', l.id), mfc_random.touch('loan', l.id)
           FROM loans_loanapplication l WHERE l.motor_id = t AND l.status IN ('active', 'completed');
    WHEN 'share_stock' THEN
        -- No finding of its own: a stock batch now holds two motor lines (or
        -- a motor none), so a motor's check must count its batch-mates' loans.
        t := mfc_random.pick('motor');
        t2 := mfc_random.pick('motor', format('t.id <> %s', t));
        UPDATE inventory_motor m SET stock_id = CASE WHEN random() < 0.2 THEN NULL ELSE o.stock_id END
          FROM inventory_motor o WHERE m.id = t AND o.id = t2;
        PERFORM mfc_random.touch('motor', t2);
    WHEN 'stock_short' THEN
        t := mfc_random.pick('motor', $$t.stock_id IS NOT NULL AND (SELECT st.quantity_repossessed FROM inventory_stock st
                WHERE st.id = t.stock_id) < (SELECT count(*) FROM loans_loanapplication l JOIN inventory_motor m
                ON m.id = l.motor_id WHERE m.stock_id = t.stock_id AND l.status IN ('active', 'completed'))$$);
        UPDATE inventory_stock st SET quantity_sold = (SELECT count(*) FROM loans_loanapplication l
                   JOIN inventory_motor m ON m.id = l.motor_id
                  WHERE m.stock_id = st.id AND l.status IN ('active', 'completed')) - st.quantity_repossessed - 1
          FROM inventory_motor m WHERE m.id = t AND st.id = m.stock_id
        RETURNING st.id INTO t2;
        PERFORM mfc_random.expect(op, 'stock_sold_mismatch', 'stock', t2);
    END CASE;
    -- What the op touched, for the single-entity checks (entity kinds the checks take).
    IF name IN ('motor_missing', 'contact_blank', 'submitter_inactive', 'principal_off', 'schedule_delete',
                'complete_unpaid', 'reactivate_paid', 'status_shuffle', 'pay_remaining') THEN
        PERFORM mfc_random.touch_loan(t);
    ELSIF name IN ('vin_duplicate', 'vin_invalid', 'over_assign', 'unapprove', 'share_stock', 'stock_short') THEN
        PERFORM mfc_random.touch('motor', t);
    ELSIF name IN ('lose_payment', 'unapplied', 'orphan_installment', 'schedule_principal_off', 'sequence_gap',
                   'duplicate_sequence', 'mark_overdue', 'stale') THEN
        PERFORM mfc_random.touch_loan(s.loan_application_id) FROM loans_paymentschedule s WHERE s.id = t;
        PERFORM mfc_random.touch('payment', p.id) FROM payments_payment p WHERE p.schedule_id = t;
    ELSIF name <> 'orphan_repossession' THEN   -- a payment op
        PERFORM mfc_random.touch('payment', t);
        PERFORM mfc_random.touch_loan(p.loan_application_id) FROM payments_payment p WHERE p.id = t;
    END IF;
    IF loan IS NOT NULL THEN
        PERFORM mfc_random.touch_loan(loan);
    END IF;
    INSERT INTO mfc_random.ops VALUES (op, name, t::text);
    RETURN true;
EXCEPTION WHEN no_data_found THEN
    RETURN false;
END
$op$;

-- Structural defects, each in some seeds: without the unique index on
-- (loan_application_id, sequence) the duplicate_sequence op can run; a
-- foreign key re-added NOT VALID.
CREATE OR REPLACE FUNCTION mfc_random.setup_system(INOUT op integer) LANGUAGE plpgsql AS $$
DECLARE
    fk record;
BEGIN
    IF random() < 0.5 THEN
        op := op + 1;
        ALTER TABLE loans_paymentschedule DROP CONSTRAINT loans_paymentschedule_loan_application_id_sequ_eb8fd6b1_uniq;
        INSERT INTO mfc_random.ops VALUES (op, 'drop_unique_sequence', NULL);
    END IF;
    IF random() < 0.4 THEN
        op := op + 1;
        SELECT c.conname, c.conrelid::regclass AS child, pg_get_constraintdef(c.oid) AS def INTO fk
          FROM pg_constraint c
         WHERE c.contype = 'f' AND c.conrelid = ANY (mfc_oracle.motofinai_tables())
         ORDER BY c.conname OFFSET floor(random() * 16) LIMIT 1;
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.child, fk.conname);
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID', fk.child, fk.conname, fk.def);
        INSERT INTO mfc_random.ops VALUES (op, 'foreign_key_not_valid', fk.conname);
        PERFORM mfc_random.expect(op, 'foreign_key_not_validated', 'constraint', NULL, fk.conname);
    END IF;
END
$$;

-- The whole injection: hot pool, structural defects, then n_ops ops drawn by
-- weight, each checked against the oracle right after it.
CREATE OR REPLACE FUNCTION mfc_random.inject(seed double precision, n_ops integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    names constant text[] := ARRAY[
        'motor_missing', 'contact_blank', 'submitter_inactive', 'principal_off', 'schedule_principal_off',
        'schedule_delete', 'sequence_gap', 'duplicate_sequence', 'overpay', 'complete_unpaid', 'reactivate_paid',
        'status_shuffle', 'mark_overdue', 'stale', 'lose_payment', 'unapplied', 'pay_remaining', 'orphan_installment',
        'orphan_repossession', 'payment_loan_missing', 'payment_installment_missing', 'payment_wrong_loan',
        'future_date', 'amount_high', 'amount_low', 'dup_reference', 'dup_bank_reference', 'dup_check',
        'near_duplicate', 'before_activation', 'vin_duplicate', 'vin_invalid', 'over_assign', 'unapprove',
        'share_stock', 'stock_short'];
    weights constant double precision[] := ARRAY[
        1, 1.5, 1.5, 1.5, 2,
        0.5, 1.5, 2, 1.5, 2, 2,
        1, 1.5, 3, 2, 3, 1, 0.5,
        0.3, 1, 1, 1.5,
        1.5, 1.5, 1.5, 1, 1, 1,
        2, 1.5, 1.5, 1, 1.5, 1.5,
        1, 1.5];
    total constant double precision := (SELECT sum(w) FROM unnest(weights) w);
    k integer := 0;
    r double precision;
    i integer;
BEGIN
    IF array_length(names, 1) <> array_length(weights, 1) THEN
        RAISE EXCEPTION 'inject: % op names but % weights', array_length(names, 1), array_length(weights, 1);
    END IF;
    SET LOCAL session_replication_role = replica;
    PERFORM setseed(seed);
    PERFORM mfc_random.choose_hot();
    k := mfc_random.setup_system(k);
    FOR attempt IN 1 .. 20 * n_ops LOOP
        EXIT WHEN (SELECT count(*) FROM mfc_random.ops WHERE name NOT IN ('drop_unique_sequence', 'foreign_key_not_valid')) >= n_ops;
        r := random() * total;
        i := 1;
        WHILE r > weights[i] AND i < array_length(names, 1) LOOP
            r := r - weights[i];
            i := i + 1;
        END LOOP;
        IF mfc_random.apply_op(k + 1, names[i]) THEN
            k := k + 1;
            WITH f AS MATERIALIZED (SELECT * FROM mfc_oracle.findings())
            UPDATE mfc_random.injected e
               SET present_after_op = EXISTS (SELECT FROM f WHERE f.code = e.code AND f.entity = e.entity
                                                 AND f.entity_id IS NOT DISTINCT FROM e.entity_id
                                                 AND f.subject IS NOT DISTINCT FROM e.subject)
             WHERE e.op = k;
        END IF;
    END LOOP;
    -- Findings of the structural ops: checked once all is done.
    WITH f AS MATERIALIZED (SELECT * FROM mfc_oracle.findings())
    UPDATE mfc_random.injected e
       SET present_after_op = EXISTS (SELECT FROM f WHERE f.code = e.code AND f.entity = e.entity
                                         AND f.subject IS NOT DISTINCT FROM e.subject)
     WHERE e.present_after_op IS NULL;
END
$$;
