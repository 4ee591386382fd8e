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
