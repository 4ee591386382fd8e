-- The Motofinai schema (the project's own copy) and the extension.
\set ECHO none
\set QUIET on
-- pg_regress feeds this file on stdin from tests/regress, so paths are relative to it.
\i ../fixtures/motofinai_schema.sql
\set QUIET off
\set ECHO all
CREATE EXTENSION motofinai_consistency;
SELECT extname, extversion, nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'motofinai_consistency';
-- A helper that shows an error's SQLSTATE and diagnostic fields, which psql
-- only prints in verbose mode together with a source location. Timestamps change
-- from run to run and are masked.
CREATE FUNCTION show_error(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text; sch text; tbl text; col text; con text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
        hnt = PG_EXCEPTION_HINT, sch = SCHEMA_NAME, tbl = TABLE_NAME, col = COLUMN_NAME, con = CONSTRAINT_NAME;
    RETURN regexp_replace(format(E'%s: %s\ndetail: %s\nhint: %s\nschema=%s table=%s column=%s constraint=%s',
            st, msg, coalesce(det, ''), coalesce(hnt, ''), sch, tbl, col, con),
        '[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]{1,2} [0-9:.]+ [0-9]{4} [A-Z]{3}', '<timestamp>', 'g');
END $$;
-- A schema of empty Motofinai tables (LIKE the public ones), for the tests
-- that point motofinai.tables_schema at cases of their own.
CREATE FUNCTION motofinai_tables_in(target text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
    EXECUTE format('CREATE SCHEMA %I', target);
    FOREACH t IN ARRAY ARRAY['users_user', 'loans_financingterm', 'inventory_stock', 'inventory_motor',
        'loans_loanapplication', 'loans_paymentschedule', 'payments_payment', 'repossession_repossessioncase',
        'inventory_motorreceiving']
    LOOP
        EXECUTE format('CREATE TABLE %I.%I (LIKE public.%I INCLUDING ALL)', target, t, t);
    END LOOP;
END $$;

-- motofinai_tables_in(target), with a clerk, a stock, its approved motor
-- and loan 1: active, of `principal` (no down payment), activated
-- `activated` ago; its installments and payments are the test's own.
CREATE FUNCTION motofinai_one_loan_in(target text, principal numeric, activated interval) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM motofinai_tables_in(target);
    EXECUTE format($q$
        INSERT INTO %1$I.users_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,
                                     is_active, date_joined, role)
        VALUES (1, '!', false, 'clerk', 'C', 'L', 'c@x', true, true, now(), 'staff');
        INSERT INTO %1$I.inventory_stock (id, brand, model_name, year, color, quantity_available, quantity_sold,
                                          created_at, updated_at, quantity_reserved, quantity_repossessed)
        VALUES (1, 'B', 'M', 2025, 'red', 5, 1, now(), now(), 0, 0);
        INSERT INTO %1$I.inventory_motor (id, type, brand, model_name, year, color, purchase_price, notes, created_at,
                                          updated_at, quantity, stock_id, approval_status, approval_notes,
                                          chassis_number)
        VALUES (1, 'scooter', 'B', 'M', 2025, 'red', 1000, '', now(), now(), 5, 1, 'approved', '',
                'MF0000000000000001');
        INSERT INTO %1$I.loans_loanapplication (id, applicant_first_name, applicant_last_name, applicant_email,
            applicant_phone, employment_status, employer_name, monthly_income, loan_amount, down_payment,
            principal_amount, interest_rate, monthly_payment, has_valid_id, has_proof_of_income, notes, status,
            submitted_at, approved_at, activated_at, updated_at, financing_term_id, motor_id, submitted_by_id,
            approved_by_id, second_approval_by_id)
        VALUES (1, 'Ana', 'Cruz', 'a@x', '0917', 'employed', 'X', 1000, %2$L, 0, %2$L, 0, 100, true, true, '',
                'active', now(), now(), now() - %3$L::interval, now(), 1, 1, 1, 1, 1)$q$,
        target, principal, activated);
END $$;
