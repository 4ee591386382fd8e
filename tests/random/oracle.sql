-- An independent, naive reference implementation of consistency-rules.md,
-- written from the rules' text only (not from src/checks/sql): one plain
-- query per code, correlated subqueries and all, slow but obviously right.
--
--   SELECT * FROM mfc_oracle.findings();   -- (code, entity, entity_id, subject, n)
--
-- Per-entity findings have entity_id and NULL subject/n. Table- and
-- constraint-level findings have NULL entity_id, a subject naming what they
-- are about (orphaned_rows: relation.column; foreign_key_*: the constraint;
-- versioning_*: the table) and n, the count of rows, where the rule has one.
-- duplicate_installment_sequence is per loan AND per sequence: subject is the
-- sequence. mfc_oracle.project() puts the extension's rows in the same shape.
--
-- Where the rules leave a reading open, the choice is said next to the query.
-- Expects the Motofinai tables in the search_path.

CREATE SCHEMA IF NOT EXISTS mfc_oracle;

CREATE OR REPLACE FUNCTION mfc_oracle.findings()
RETURNS TABLE (code text, entity text, entity_id bigint, subject text, n bigint)
LANGUAGE plpgsql STABLE AS $oracle$
DECLARE
    fk record;
    cnt bigint;
BEGIN
    -- Loan family -------------------------------------------------------
    RETURN QUERY SELECT 'motor_missing', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE NOT EXISTS (SELECT FROM inventory_motor m WHERE m.id = l.motor_id);

    RETURN QUERY SELECT 'applicant_contact_incomplete', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE btrim(l.applicant_first_name) = '' OR btrim(l.applicant_last_name) = ''
        OR btrim(l.applicant_email) = '' OR btrim(l.applicant_phone) = '';

    -- A submitter that does not exist is a foreign key problem, not an inactive account.
    RETURN QUERY SELECT 'submitter_inactive', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE l.status <> 'completed'
       AND EXISTS (SELECT FROM users_user u WHERE u.id = l.submitted_by_id AND NOT u.is_active);

    RETURN QUERY SELECT 'principal_mismatch', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE l.principal_amount <> l.loan_amount - l.down_payment OR l.down_payment > l.loan_amount;

    RETURN QUERY SELECT 'schedule_total_mismatch', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id)
       AND (SELECT sum(s.principal_amount) FROM loans_paymentschedule s WHERE s.loan_application_id = l.id)
           <> l.principal_amount;

    RETURN QUERY SELECT 'schedule_missing', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE (l.status = 'active'
            OR (l.status = 'approved' AND l.approved_by_id IS NOT NULL AND l.second_approval_by_id IS NOT NULL))
       AND NOT EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id);

    RETURN QUERY SELECT 'schedule_sequence_gap', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id)
       AND ARRAY(SELECT s.sequence FROM loans_paymentschedule s WHERE s.loan_application_id = l.id ORDER BY 1)
           <> ARRAY(SELECT generate_series(1, (SELECT count(*)::int FROM loans_paymentschedule s
                                               WHERE s.loan_application_id = l.id)));

    RETURN QUERY SELECT 'overpaid', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE mfc_oracle.paid(l.id) > mfc_oracle.owed(l.id);

    RETURN QUERY SELECT 'completed_not_paid', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE l.status = 'completed'
       AND (EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id AND s.status <> 'paid')
            OR mfc_oracle.paid(l.id) < mfc_oracle.owed(l.id)
            OR NOT EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id));

    -- "Every installment paid" is not vacuously true: completed_not_paid
    -- counts a loan without installments as not fully paid, so must this.
    RETURN QUERY SELECT 'paid_not_completed', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE l.status = 'active'
       AND EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id)
       AND NOT EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id AND s.status <> 'paid')
       AND mfc_oracle.paid(l.id) >= mfc_oracle.owed(l.id);

    RETURN QUERY SELECT 'overdue', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id
                      AND s.due_date < current_date AND s.status <> 'paid');

    RETURN QUERY SELECT 'overdue_status_stale', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id
                      AND s.status = 'due' AND s.due_date < current_date
                      AND NOT EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id));

    -- Reported on the installment, whether or not its loan exists.
    RETURN QUERY SELECT 'schedule_paid_without_payment', 'schedule', s.id, NULL, NULL::bigint
      FROM loans_paymentschedule s
     WHERE s.status = 'paid' AND NOT EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id);

    RETURN QUERY SELECT 'payment_not_applied', 'schedule', s.id, NULL, NULL::bigint
      FROM loans_paymentschedule s
     WHERE s.status <> 'paid' AND EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id);

    RETURN QUERY SELECT 'unapproved_motor_financed', 'loan', l.id, NULL, NULL::bigint FROM loans_loanapplication l
     WHERE l.status IN ('active', 'completed')
       AND EXISTS (SELECT FROM inventory_motor m WHERE m.id = l.motor_id AND m.approval_status <> 'approved');

    -- Payment family ----------------------------------------------------
    RETURN QUERY SELECT 'loan_missing', 'payment', p.id, NULL, NULL::bigint FROM payments_payment p
     WHERE NOT EXISTS (SELECT FROM loans_loanapplication l WHERE l.id = p.loan_application_id);

    RETURN QUERY SELECT 'installment_missing', 'payment', p.id, NULL, NULL::bigint FROM payments_payment p
     WHERE NOT EXISTS (SELECT FROM loans_paymentschedule s WHERE s.id = p.schedule_id);

    RETURN QUERY SELECT 'schedule_loan_mismatch', 'payment', p.id, NULL, NULL::bigint FROM payments_payment p
     WHERE EXISTS (SELECT FROM loans_paymentschedule s
                    WHERE s.id = p.schedule_id AND s.loan_application_id <> p.loan_application_id);

    RETURN QUERY SELECT 'future_payment_date', 'payment', p.id, NULL, NULL::bigint FROM payments_payment p
     WHERE p.payment_date > current_date;

    RETURN QUERY SELECT 'amount_exceeds_schedule', 'payment', p.id, NULL, NULL::bigint FROM payments_payment p
     WHERE EXISTS (SELECT FROM loans_paymentschedule s WHERE s.id = p.schedule_id AND p.amount > 1.10 * s.total_amount);

    RETURN QUERY SELECT 'amount_differs_from_schedule', 'payment', p.id, NULL, NULL::bigint FROM payments_payment p
     WHERE EXISTS (SELECT FROM loans_paymentschedule s WHERE s.id = p.schedule_id
                      AND p.amount <> s.total_amount AND NOT p.amount > 1.10 * s.total_amount);

    -- Values compared as stored; "non-blank" is "not only spaces"; a pair is
    -- non-blank when both its parts are. One semi-join per kind of match.
    RETURN QUERY SELECT 'possible_duplicate', 'payment', d.id, NULL, NULL::bigint FROM (
        SELECT p.id FROM payments_payment p
         WHERE btrim(p.reference) <> ''
           AND EXISTS (SELECT FROM payments_payment q WHERE q.id <> p.id AND q.reference = p.reference)
        UNION
        SELECT p.id FROM payments_payment p
         WHERE btrim(p.bank_name) <> '' AND btrim(p.bank_reference) <> ''
           AND EXISTS (SELECT FROM payments_payment q WHERE q.id <> p.id
                          AND q.bank_name = p.bank_name AND q.bank_reference = p.bank_reference)
        UNION
        SELECT p.id FROM payments_payment p
         WHERE btrim(p.bank_name) <> '' AND btrim(p.check_number) <> ''
           AND EXISTS (SELECT FROM payments_payment q WHERE q.id <> p.id
                          AND q.bank_name = p.bank_name AND q.check_number = p.check_number)) d;

    RETURN QUERY SELECT 'payment_before_activation', 'payment', p.id, NULL, NULL::bigint FROM payments_payment p
     WHERE EXISTS (SELECT FROM loans_loanapplication l
                    WHERE l.id = p.loan_application_id AND p.payment_date < l.activated_at::date);

    -- Inventory family --------------------------------------------------
    RETURN QUERY SELECT 'duplicate_vin', 'motor', m.id, NULL, NULL::bigint FROM inventory_motor m
     WHERE btrim(m.chassis_number) <> ''
       AND EXISTS (SELECT FROM inventory_motor o
                    WHERE o.id <> m.id AND upper(btrim(o.chassis_number)) = upper(btrim(m.chassis_number)));

    -- Read like the duplicate rule: trimmed, and letters in either case
    -- (the generator's duplicated VINs are lower case and padded, and valid).
    RETURN QUERY SELECT 'invalid_vin', 'motor', m.id, NULL, NULL::bigint FROM inventory_motor m
     WHERE btrim(m.chassis_number) <> ''
       AND upper(btrim(m.chassis_number)) !~ '^[A-HJ-NPR-Z0-9]{17}$';

    RETURN QUERY SELECT 'over_assigned', 'motor', m.id, NULL, NULL::bigint FROM inventory_motor m
     WHERE (SELECT count(*) FROM loans_loanapplication l
             WHERE l.motor_id = m.id AND l.status IN ('pending', 'approved', 'active')) > m.quantity;

    RETURN QUERY SELECT 'unapproved_motor_financed', 'motor', m.id, NULL, NULL::bigint FROM inventory_motor m
     WHERE m.approval_status <> 'approved'
       AND EXISTS (SELECT FROM loans_loanapplication l WHERE l.motor_id = m.id AND l.status IN ('active', 'completed'));

    RETURN QUERY SELECT 'stock_sold_mismatch', 'stock', st.id, NULL, NULL::bigint FROM inventory_stock st
     WHERE st.quantity_sold + st.quantity_repossessed
           < (SELECT count(*) FROM loans_loanapplication l JOIN inventory_motor m ON m.id = l.motor_id
               WHERE m.stock_id = st.id AND l.status IN ('active', 'completed'));

    -- System ------------------------------------------------------------
    RETURN QUERY SELECT 'orphaned_rows', 'table', NULL::bigint, o.rel, o.cnt FROM (
        SELECT 'payments_payment.loan_application_id' AS rel, count(*) AS cnt FROM payments_payment c
         WHERE NOT EXISTS (SELECT FROM loans_loanapplication p WHERE p.id = c.loan_application_id)
        UNION ALL
        SELECT 'payments_payment.schedule_id', count(*) FROM payments_payment c
         WHERE NOT EXISTS (SELECT FROM loans_paymentschedule p WHERE p.id = c.schedule_id)
        UNION ALL
        SELECT 'loans_paymentschedule.loan_application_id', count(*) FROM loans_paymentschedule c
         WHERE NOT EXISTS (SELECT FROM loans_loanapplication p WHERE p.id = c.loan_application_id)
        UNION ALL
        SELECT 'loans_loanapplication.motor_id', count(*) FROM loans_loanapplication c
         WHERE NOT EXISTS (SELECT FROM inventory_motor p WHERE p.id = c.motor_id)
        UNION ALL
        SELECT 'repossession_repossessioncase.loan_application_id', count(*) FROM repossession_repossessioncase c
         WHERE NOT EXISTS (SELECT FROM loans_loanapplication p WHERE p.id = c.loan_application_id)) o
     WHERE o.cnt > 0;

    -- Every (single-column) foreign key the catalog has on the Motofinai tables.
    FOR fk IN
        SELECT c.conname, c.conrelid::regclass AS child, c.confrelid::regclass AS parent,
               a.attname AS col, pa.attname AS pcol, c.convalidated
          FROM pg_constraint c
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
          JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
         WHERE c.contype = 'f' AND c.conrelid = ANY (mfc_oracle.motofinai_tables())
    LOOP
        EXECUTE format('SELECT count(*) FROM %s c WHERE c.%I IS NOT NULL
                          AND NOT EXISTS (SELECT FROM %s p WHERE p.%I = c.%I)',
                       fk.child, fk.col, fk.parent, fk.pcol, fk.col) INTO cnt;
        IF cnt > 0 THEN
            RETURN QUERY SELECT 'foreign_key_violation', 'constraint', NULL::bigint, fk.conname::text, cnt;
        END IF;
        -- (A missing expected foreign key is the other half of this rule; no injection drops one.)
        IF NOT fk.convalidated THEN
            RETURN QUERY SELECT 'foreign_key_not_validated', 'constraint', NULL::bigint, fk.conname::text, NULL::bigint;
        END IF;
    END LOOP;

    -- Only where no valid unique index on exactly (loan_application_id, sequence) rules it out.
    IF NOT EXISTS (SELECT FROM pg_index i
                    WHERE i.indrelid = 'loans_paymentschedule'::regclass AND i.indisunique AND i.indisvalid
                      AND i.indpred IS NULL AND i.indexprs IS NULL
                      AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
                            WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey))
                          = ARRAY['loan_application_id', 'sequence']) THEN
        RETURN QUERY SELECT 'duplicate_installment_sequence', 'loan', s.loan_application_id, s.sequence::text, count(*)
          FROM loans_paymentschedule s GROUP BY s.loan_application_id, s.sequence HAVING count(*) > 1;
    END IF;

    RETURN QUERY SELECT 'versioning_disabled', 'table', NULL::bigint, c.tbl::text, NULL::bigint
      FROM motofinai.versioning_config c
     WHERE NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.tbl AND t.tgname = 'motofinai_versioning'
                          AND t.tgenabled <> 'D');

    -- A present trigger whose arguments are not the registered options.
    RETURN QUERY SELECT 'versioning_mismatch', 'table', NULL::bigint, c.tbl::text, NULL::bigint
      FROM motofinai.versioning_config c JOIN pg_trigger t ON t.tgrelid = c.tbl AND t.tgname = 'motofinai_versioning'
     WHERE mfc_oracle.trigger_args(t.tgargs, t.tgnargs)
           IS DISTINCT FROM ARRAY[c.version_column::text, c.modified_column::text, c.protocol::text, c.strict::text];
END
$oracle$;

CREATE OR REPLACE FUNCTION mfc_oracle.paid(loan bigint) RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(p.amount), 0) FROM payments_payment p WHERE p.loan_application_id = loan
$$;

CREATE OR REPLACE FUNCTION mfc_oracle.owed(loan bigint) RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(s.total_amount), 0) FROM loans_paymentschedule s WHERE s.loan_application_id = loan
$$;

CREATE OR REPLACE FUNCTION mfc_oracle.motofinai_tables() RETURNS regclass[] LANGUAGE sql STABLE AS $$
    SELECT ARRAY['inventory_motor', 'inventory_motorreceiving', 'inventory_stock', 'loans_financingterm',
                 'loans_loanapplication', 'loans_paymentschedule', 'payments_payment',
                 'repossession_repossessioncase', 'users_user']::regclass[]
$$;

-- pg_trigger.tgargs (each argument followed by a NUL byte) as text[]. The
-- 'escape' encoding shows NUL as \000 (and doubles backslashes: none here).
CREATE OR REPLACE FUNCTION mfc_oracle.trigger_args(args bytea, nargs smallint) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT (string_to_array(encode(args, 'escape'), '\000'))[1:nargs]
$$;

-- The extension's findings in the oracle's shape (see the top of this file).
CREATE OR REPLACE FUNCTION mfc_oracle.project(f_code text, f_entity text, f_entity_id bigint, details jsonb,
                                              OUT code text, OUT entity text, OUT entity_id bigint,
                                              OUT subject text, OUT n bigint)
LANGUAGE sql STABLE AS $$
    SELECT f_code, f_entity, f_entity_id,
           CASE f_code
             WHEN 'orphaned_rows' THEN (details ->> 'relation') || '.' || (details ->> 'column')
             WHEN 'foreign_key_violation' THEN details ->> 'constraint'
             WHEN 'foreign_key_not_validated' THEN details ->> 'constraint'
             WHEN 'duplicate_installment_sequence' THEN details ->> 'sequence'
             -- (schema-qualified there, as the checks' pinned search_path prints it)
             WHEN 'versioning_disabled' THEN (details ->> 'table')::regclass::text
             WHEN 'versioning_mismatch' THEN (details ->> 'table')::regclass::text
           END,
           CASE WHEN f_code IN ('orphaned_rows', 'foreign_key_violation', 'duplicate_installment_sequence')
                THEN (details ->> 'count')::bigint END
$$;

-- The repairs the rules' "Fixes" section calls for (code, entity, entity_id),
-- each with its loan, and `cascaded` when only the repairs make it due: an
-- active loan all of whose installments are paid, or have a payment (so
-- payment_not_applied marks them paid), with its payments covering the total.
CREATE OR REPLACE FUNCTION mfc_oracle.expected_plan()
RETURNS TABLE (code text, entity text, entity_id bigint, loan_id bigint, cascaded boolean)
LANGUAGE sql STABLE AS $$
    -- The stale finding is the loan's: installments of a missing loan have none.
    SELECT 'overdue_status_stale', 'schedule', s.id, s.loan_application_id, false FROM loans_paymentschedule s
     WHERE s.status = 'due' AND s.due_date < current_date
       AND NOT EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id)
       AND EXISTS (SELECT FROM loans_loanapplication l WHERE l.id = s.loan_application_id)
    UNION ALL
    SELECT 'payment_not_applied', 'schedule', s.id, s.loan_application_id, false FROM loans_paymentschedule s
     WHERE s.status <> 'paid' AND EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id)
    UNION ALL
    SELECT 'paid_not_completed', 'loan', l.id, l.id,
           EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id AND s.status <> 'paid')
      FROM loans_loanapplication l
     WHERE l.status = 'active'
       AND EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id)
       AND NOT EXISTS (SELECT FROM loans_paymentschedule s WHERE s.loan_application_id = l.id AND s.status <> 'paid'
                          AND NOT EXISTS (SELECT FROM payments_payment p WHERE p.schedule_id = s.id))
       AND mfc_oracle.paid(l.id) >= mfc_oracle.owed(l.id)
$$;

-- The (existing) loans with repairs that would still have a blocking finding
-- (motofinai.blocking_codes) once repaired: the deferred consistency check
-- would refuse them at COMMIT. The repairs are made by hand, by the rules,
-- in a subtransaction rolled back at the end.
CREATE OR REPLACE FUNCTION mfc_oracle.blocked_after_repairs() RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    blocking constant text[] := string_to_array(replace(current_setting('motofinai.blocking_codes'), ' ', ''), ',');
    plan constant jsonb := (SELECT jsonb_agg(p) FROM mfc_oracle.expected_plan() p);
    result bigint[];
BEGIN
    BEGIN
        SET LOCAL session_replication_role = replica;   -- no trigger of ours sees the simulation
        UPDATE loans_paymentschedule s SET status = CASE p.code WHEN 'overdue_status_stale' THEN 'overdue' ELSE 'paid' END
          FROM jsonb_to_recordset(plan) p(code text, entity_id bigint)
         WHERE p.code <> 'paid_not_completed' AND s.id = p.entity_id;
        UPDATE loans_loanapplication l SET status = 'completed'
          FROM jsonb_to_recordset(plan) p(code text, entity_id bigint)
         WHERE p.code = 'paid_not_completed' AND l.id = p.entity_id;
        WITH f AS MATERIALIZED (SELECT * FROM mfc_oracle.findings())
        SELECT array_agg(DISTINCT p.loan_id) INTO result
          FROM jsonb_to_recordset(plan) p(loan_id bigint)
         WHERE EXISTS (SELECT FROM f
                        WHERE f.code = ANY (blocking)
                          AND ((f.entity = 'loan' AND f.entity_id = p.loan_id)
                               OR (f.entity = 'schedule' AND f.entity_id IN (
                                       SELECT s.id FROM loans_paymentschedule s WHERE s.loan_application_id = p.loan_id))))
           AND EXISTS (SELECT FROM loans_loanapplication l WHERE l.id = p.loan_id);
        RAISE EXCEPTION USING ERRCODE = 'MFRBK';   -- undo the simulation
    EXCEPTION WHEN SQLSTATE 'MFRBK' THEN
        NULL;
    END;
    RETURN coalesce(result, '{}');
END
$$;
