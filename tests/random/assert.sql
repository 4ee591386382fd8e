-- The assertions of part A, as queries yielding (assertion, ok, detail) rows
-- that run.sh turns into passes and failures. Needs oracle.sql, inject.sql
-- and the extension.

CREATE SCHEMA IF NOT EXISTS mfc_assert;

-- What fix_consistency returned, and the system check before the repairs.
CREATE TABLE IF NOT EXISTS mfc_assert.dry (code text, entity text, entity_id bigint, changes jsonb, summary text,
                                           applied boolean, note text);
CREATE TABLE IF NOT EXISTS mfc_assert.applied (LIKE mfc_assert.dry);
CREATE TABLE IF NOT EXISTS mfc_assert.before (severity text, code text, entity text, entity_id bigint, message text,
                                              details jsonb);
CREATE TABLE IF NOT EXISTS mfc_assert.plan (code text, entity text, entity_id bigint, loan_id bigint, cascaded boolean);
CREATE TABLE IF NOT EXISTS mfc_assert.blocked (loan_id bigint);

-- Lists of differences, shortened for a failure message.
CREATE OR REPLACE FUNCTION mfc_assert.verdict(assertion text, problems text[], ok_detail text DEFAULT NULL,
                                              OUT assertion text, OUT ok boolean, OUT detail text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT assertion, coalesce(cardinality(problems), 0) = 0,
           CASE WHEN coalesce(cardinality(problems), 0) = 0 THEN ok_detail
                ELSE cardinality(problems) || ': ' || array_to_string(problems[1:12], '; ')
                     || CASE WHEN cardinality(problems) > 12 THEN '; ...' ELSE '' END END
$$;

-- A1: the system check finds exactly what the oracle finds.
CREATE OR REPLACE FUNCTION mfc_assert.system_is_oracle(label text)
RETURNS TABLE (assertion text, ok boolean, detail text) LANGUAGE sql AS $$
    WITH ext AS MATERIALIZED (
        SELECT p.* FROM motofinai.check_system_consistency() f,
               LATERAL mfc_oracle.project(f.code, f.entity, f.entity_id, f.details) p
    ), ora AS MATERIALIZED (SELECT * FROM mfc_oracle.findings()),
    diff AS (
        SELECT 'extension only' AS side, * FROM (SELECT * FROM ext EXCEPT ALL SELECT * FROM ora) a
        UNION ALL
        SELECT 'oracle only', * FROM (SELECT * FROM ora EXCEPT ALL SELECT * FROM ext) b
    )
    SELECT v.* FROM mfc_assert.verdict(
        label || ': check_system_consistency() = the oracle',
        ARRAY(SELECT format('%s %s %s %s%s', side, code, entity, coalesce(entity_id::text, subject),
                            CASE WHEN n IS NOT NULL THEN ' n=' || n ELSE '' END)
                FROM diff ORDER BY code, entity_id, subject, side),
        (SELECT count(*) || ' findings, ' || count(DISTINCT code) || ' codes' FROM ora)) v
$$;

-- A1: every injected finding showed right after its op, and most are still there at the end.
CREATE OR REPLACE FUNCTION mfc_assert.injections()
RETURNS TABLE (assertion text, ok boolean, detail text) LANGUAGE sql AS $$
    WITH ora AS MATERIALIZED (SELECT * FROM mfc_oracle.findings()),
    e AS (
        SELECT i.*, o.name, EXISTS (SELECT FROM ora f WHERE f.code = i.code AND f.entity = i.entity
                                       AND f.entity_id IS NOT DISTINCT FROM i.entity_id
                                       AND f.subject IS NOT DISTINCT FROM i.subject) AS present
          FROM mfc_random.injected i JOIN mfc_random.ops o USING (op)
    )
    SELECT v.* FROM mfc_assert.verdict('every injected defect causes its finding right after its op',
        ARRAY(SELECT format('op %s %s: no %s on %s %s', op, name, code, entity, coalesce(entity_id::text, subject))
                FROM e WHERE NOT present_after_op ORDER BY op),
        (SELECT count(*) || ' expected findings from ' || count(DISTINCT op) || ' ops' FROM e)) v
    UNION ALL
    SELECT format('most injected findings are not masked by later ops (%s of %s masked)',
                  count(*) FILTER (WHERE present_after_op AND NOT present), count(*)),
           2 * count(*) FILTER (WHERE present_after_op AND NOT present) < count(*),
           string_agg(format('op %s %s: %s on %s %s', op, name, code, entity, coalesce(entity_id::text, subject)),
                      '; ' ORDER BY op) FILTER (WHERE present_after_op AND NOT present)
      FROM e
$$;

-- A2: each touched loan, payment and motor's single-entity check gives the
-- system check's rows for that entity. The loan family's rows are on the loan
-- and on its installments (entity schedule, details.loan_id), the system-only
-- duplicate_installment_sequence aside; the inventory family's on the motor
-- and on its stock batch.
CREATE OR REPLACE FUNCTION mfc_assert.single_is_system()
RETURNS TABLE (assertion text, ok boolean, detail text) LANGUAGE sql AS $$
    WITH sys AS MATERIALIZED (SELECT * FROM motofinai.check_system_consistency()),
    loans AS (SELECT t.id FROM mfc_random.touched t WHERE t.kind = 'loan'
                 AND EXISTS (SELECT FROM loans_loanapplication l WHERE l.id = t.id)),
    payments AS (SELECT t.id FROM mfc_random.touched t WHERE t.kind = 'payment'
                    AND EXISTS (SELECT FROM payments_payment p WHERE p.id = t.id)),
    motors AS (SELECT t.id, m.stock_id FROM mfc_random.touched t JOIN inventory_motor m ON m.id = t.id
                WHERE t.kind = 'motor'),
    single AS (
        SELECT 'loan' AS family, l.id, f.* FROM loans l, motofinai.check_loan_consistency(l.id) f
        UNION ALL
        SELECT 'payment', p.id, f.* FROM payments p, motofinai.check_payment_consistency(p.id) f
        UNION ALL
        SELECT 'motor', m.id, f.* FROM motors m, motofinai.check_inventory_consistency(m.id) f
    ), expected AS (
        SELECT 'loan' AS family, l.id, s.* FROM loans l JOIN sys s
            ON (s.entity = 'loan' AND s.entity_id = l.id AND s.code <> 'duplicate_installment_sequence')
            OR (s.entity = 'schedule' AND (s.details ->> 'loan_id')::bigint = l.id)
        UNION ALL
        SELECT 'payment', p.id, s.* FROM payments p JOIN sys s ON s.entity = 'payment' AND s.entity_id = p.id
        UNION ALL
        SELECT 'motor', m.id, s.* FROM motors m JOIN sys s
            ON (s.entity = 'motor' AND s.entity_id = m.id) OR (s.entity = 'stock' AND s.entity_id = m.stock_id)
    ), diff AS (
        SELECT 'single only' AS side, * FROM (SELECT * FROM single EXCEPT ALL SELECT * FROM expected) a
        UNION ALL
        SELECT 'system only', * FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM single) b
    )
    SELECT v.* FROM mfc_assert.verdict(
        'single-entity checks of every touched loan, payment and motor = the system check''s rows for it',
        ARRAY(SELECT format('%s check of %s %s, %s: %s %s %s %s %s', family, family, id, side, severity, code,
                            entity, entity_id, details) FROM diff ORDER BY family, id, code),
        (SELECT format('%s loans, %s payments, %s motors, %s rows', (SELECT count(*) FROM loans),
                       (SELECT count(*) FROM payments), (SELECT count(*) FROM motors), count(*)) FROM single)) v
$$;

-- A3, before the repairs: the findings, the repairs the rules call for and
-- the loans the deferred check would still refuse after them.
CREATE OR REPLACE FUNCTION mfc_assert.prepare_fix() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mfc_assert.before SELECT * FROM motofinai.check_system_consistency();
    INSERT INTO mfc_assert.plan SELECT * FROM mfc_oracle.expected_plan();
    INSERT INTO mfc_assert.blocked SELECT unnest(mfc_oracle.blocked_after_repairs());
END
$$;

-- The loan a fix row is about.
CREATE OR REPLACE FUNCTION mfc_assert.loan_of(entity text, entity_id bigint) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT CASE entity WHEN 'loan' THEN entity_id
                       ELSE (SELECT s.loan_application_id FROM loans_paymentschedule s WHERE s.id = entity_id) END
$$;

-- A3, after `dry run; apply; COMMIT` (mfc_assert.dry, mfc_assert.applied).
-- enforced: the deferred consistency check is installed.
CREATE OR REPLACE FUNCTION mfc_assert.fixes(label text, enforced boolean)
RETURNS TABLE (assertion text, ok boolean, detail text) LANGUAGE sql AS $$
    WITH noted AS (SELECT DISTINCT mfc_assert.loan_of(entity, entity_id) AS loan_id FROM mfc_assert.applied
                    WHERE note IS NOT NULL),
    after AS MATERIALIZED (SELECT * FROM motofinai.check_system_consistency()),
    again AS MATERIALIZED (SELECT * FROM motofinai.fix_consistency('system', NULL, false)),
    -- Rules that read neither an installment's nor a loan's status.
    status_free(code) AS (VALUES ('motor_missing'), ('applicant_contact_incomplete'), ('principal_mismatch'),
        ('schedule_total_mismatch'), ('schedule_sequence_gap'), ('overpaid'), ('loan_missing'),
        ('installment_missing'), ('schedule_loan_mismatch'), ('future_payment_date'), ('amount_exceeds_schedule'),
        ('amount_differs_from_schedule'), ('possible_duplicate'), ('payment_before_activation'), ('duplicate_vin'),
        ('invalid_vin'), ('orphaned_rows'), ('foreign_key_violation'), ('foreign_key_not_validated'),
        ('duplicate_installment_sequence'))
    SELECT v.* FROM mfc_assert.verdict(label || ': the dry run lists exactly the rows applying returns',
        ARRAY(SELECT format('%s %s %s %s %s', side, code, entity, entity_id, summary) FROM (
            SELECT 'dry run only' AS side, * FROM (SELECT code, entity, entity_id, changes, summary FROM mfc_assert.dry
                                           EXCEPT ALL SELECT code, entity, entity_id, changes, summary FROM mfc_assert.applied) a
            UNION ALL
            SELECT 'applied only', * FROM (SELECT code, entity, entity_id, changes, summary FROM mfc_assert.applied
                                           EXCEPT ALL SELECT code, entity, entity_id, changes, summary FROM mfc_assert.dry) b) d),
        (SELECT count(*) || ' repairs' FROM mfc_assert.dry)) v
    UNION ALL
    SELECT v.* FROM mfc_assert.verdict(label || ': applied is true exactly on the rows without a note',
        ARRAY(SELECT format('%s %s %s applied=%s note=%s', code, entity, entity_id, applied, note)
                FROM mfc_assert.applied WHERE applied IS DISTINCT FROM (note IS NULL)
              UNION ALL
              SELECT format('dry run row %s %s %s says applied', code, entity, entity_id)
                FROM mfc_assert.dry WHERE applied)) v
    UNION ALL
    -- The repairs the rules call for, the cascade included (see expected_plan);
    -- a loan rolled back with a note lists at least its first repairs.
    SELECT v.* FROM mfc_assert.verdict(label || ': the dry run plans the repairs the rules call for',
        ARRAY(SELECT format('%s %s %s %s', side, code, entity, entity_id) FROM (
            SELECT 'unexpected' AS side, d.code, d.entity, d.entity_id FROM mfc_assert.dry d
             WHERE NOT EXISTS (SELECT FROM mfc_assert.plan p
                                WHERE (p.code, p.entity, p.entity_id) = (d.code, d.entity, d.entity_id))
            UNION ALL
            SELECT 'missing', p.code, p.entity, p.entity_id FROM mfc_assert.plan p
             WHERE NOT EXISTS (SELECT FROM mfc_assert.dry d
                                WHERE (p.code, p.entity, p.entity_id) = (d.code, d.entity, d.entity_id))
               AND NOT (p.cascaded AND p.loan_id IN (SELECT loan_id FROM noted))) x),
        (SELECT count(*) || ' planned, ' || count(*) FILTER (WHERE cascaded) || ' by cascade' FROM mfc_assert.plan)) v
    UNION ALL
    SELECT v.* FROM mfc_assert.verdict(label || ': each repair changes what the rules say',
        ARRAY(SELECT format('%s %s %s: %s', d.code, d.entity, d.entity_id, d.changes) FROM mfc_assert.dry d
               WHERE d.changes -> 'status' ->> 'to' IS DISTINCT FROM CASE d.code WHEN 'overdue_status_stale' THEN 'overdue'
                                     WHEN 'payment_not_applied' THEN 'paid' ELSE 'completed' END
                  OR (d.code = 'payment_not_applied' AND (d.changes -> 'paid_at' ->> 'to')::timestamptz::date
                      IS DISTINCT FROM (SELECT p.payment_date FROM payments_payment p WHERE p.schedule_id = d.entity_id))
                  OR (d.code = 'paid_not_completed' AND d.changes -> 'completed_at' ->> 'to' IS NULL))) v
    UNION ALL
    SELECT v.* FROM mfc_assert.verdict(label || CASE WHEN enforced
            THEN ': exactly the loans the deferred check would refuse are rolled back with a note'
            ELSE ': no loan is rolled back (no note)' END,
        ARRAY(SELECT format('loan %s: %s', loan_id, CASE WHEN n THEN 'noted, but nothing blocks it' ELSE
                            'blocked after its repairs, but no note' END) FROM (
            SELECT loan_id, true AS n FROM noted
             WHERE loan_id NOT IN (SELECT loan_id FROM mfc_assert.blocked WHERE enforced)
            UNION ALL
            SELECT b.loan_id, false FROM mfc_assert.blocked b
             WHERE enforced AND b.loan_id IN (SELECT loan_id FROM mfc_assert.plan)
               AND b.loan_id NOT IN (SELECT loan_id FROM noted)) x
         UNION ALL
         SELECT format('loan %s: some rows have a note, some not', mfc_assert.loan_of(entity, entity_id))
           FROM mfc_assert.applied GROUP BY 1 HAVING count(DISTINCT note IS NULL) > 1),
        (SELECT count(*) || ' of ' || (SELECT count(DISTINCT loan_id) FROM mfc_assert.plan)
                || ' loans with repairs noted' FROM noted)) v
    UNION ALL
    SELECT v.* FROM mfc_assert.verdict(label || ': no fixable finding remains but on noted loans',
        ARRAY(SELECT format('%s %s %s', a.code, a.entity, a.entity_id) FROM after a
               WHERE a.code IN ('overdue_status_stale', 'payment_not_applied', 'paid_not_completed')
                 AND coalesce((a.details ->> 'loan_id')::bigint, a.entity_id) NOT IN (SELECT loan_id FROM noted))) v
    UNION ALL
    SELECT v.* FROM mfc_assert.verdict(label || ': findings of rules that do not read a status are unchanged',
        ARRAY(SELECT format('%s %s %s %s', side, code, entity, coalesce(entity_id::text, details::text)) FROM (
            SELECT 'gone', * FROM (SELECT * FROM mfc_assert.before WHERE code IN (TABLE status_free)
                                   EXCEPT ALL SELECT * FROM after WHERE code IN (TABLE status_free)) a
            UNION ALL
            SELECT 'new', * FROM (SELECT * FROM after WHERE code IN (TABLE status_free)
                                  EXCEPT ALL SELECT * FROM mfc_assert.before WHERE code IN (TABLE status_free)) b)
            x(side, severity, code, entity, entity_id, message, details)),
        (SELECT count(*) || ' findings' FROM after WHERE code IN (TABLE status_free))) v
    UNION ALL
    SELECT v.* FROM mfc_assert.verdict(label || ': a second dry run plans nothing but the noted loans'' repairs again',
        ARRAY(SELECT format('%s %s %s %s', side, code, entity, entity_id) FROM (
            SELECT 'planned again' AS side, code, entity, entity_id FROM again
            EXCEPT ALL SELECT 'planned again', code, entity, entity_id FROM mfc_assert.applied WHERE note IS NOT NULL) x)) v
$$;
