-- Hostile-call fuzzing: the objects to aim at, the call generator and the runner.
-- Loaded by tests/fuzz/hostile_calls.sh into a throwaway database that already
-- holds the Motofinai tables, generated data and the extension.
-- psql variables: host, port, db (for a postgres_fdw loopback foreign table).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- Relations of every awkward kind.
SELECT motofinai.enable_versioning('loans_loanapplication');
SELECT motofinai.enable_versioning('payments_payment', protocol => 'increment', strict => true);
CREATE VIEW loans_view AS SELECT * FROM loans_loanapplication;            -- auto-updatable
CREATE MATERIALIZED VIEW loans_mv AS SELECT id, status FROM loans_loanapplication;
CREATE TABLE part_parent (id bigint PRIMARY KEY, v int) PARTITION BY RANGE (id);
CREATE TABLE part_child PARTITION OF part_parent FOR VALUES FROM (1) TO (1000);
INSERT INTO part_parent SELECT g, 0 FROM generate_series(1, 10) g;
SELECT motofinai.enable_versioning('part_parent');
CREATE TABLE part_empty (id bigint PRIMARY KEY, v int) PARTITION BY RANGE (id);  -- no partitions, not versioned
CREATE TABLE no_pk (a int, b text);
INSERT INTO no_pk VALUES (1, 'x');
SELECT motofinai.enable_versioning('no_pk', create_index => false);
CREATE TABLE text_pk (code text PRIMARY KEY, v int);
INSERT INTO text_pk VALUES ('1', 0);
SELECT motofinai.enable_versioning('text_pk');
CREATE TABLE pair_pk (a int, b int, v int, PRIMARY KEY (a, b));
INSERT INTO pair_pk VALUES (1, 1, 0);
SELECT motofinai.enable_versioning('pair_pk');
CREATE TABLE small_pk (id smallint PRIMARY KEY, v int, version smallint NOT NULL DEFAULT 32767);
INSERT INTO small_pk VALUES (1, 0), (32767, 0);
SELECT motofinai.enable_versioning('small_pk');
CREATE TABLE wrong_types (id int PRIMARY KEY, version text, last_modified_at date);
CREATE TABLE gen_cols (id int PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED,
                       ident int GENERATED ALWAYS AS IDENTITY);
INSERT INTO gen_cols (id, a) VALUES (1, 1);
SELECT motofinai.enable_versioning('gen_cols');
-- Hostile column names must exist already (enable_versioning adds plain ones only).
CREATE TABLE "Ho""stile; tab --" ("I d" int PRIMARY KEY, "ü ñ" text, "ver""sion" integer NOT NULL DEFAULT 1,
                                  "mod ified; --" timestamptz NOT NULL DEFAULT now());
INSERT INTO "Ho""stile; tab --" VALUES (1, 'x');
SELECT motofinai.enable_versioning('"Ho""stile; tab --"', 'ver"sion', 'mod ified; --');
CREATE TABLE rls_tab (id int PRIMARY KEY, v int);
INSERT INTO rls_tab VALUES (1, 0);
ALTER TABLE rls_tab ENABLE ROW LEVEL SECURITY;
SELECT motofinai.enable_versioning('rls_tab');
CREATE UNLOGGED TABLE unlogged_tab (id int PRIMARY KEY, v int);
INSERT INTO unlogged_tab VALUES (1, 0);
SELECT motofinai.enable_versioning('unlogged_tab');
CREATE TABLE dropped_cols (id int PRIMARY KEY, x int, v int);
INSERT INTO dropped_cols VALUES (1, 0, 0);
SELECT motofinai.enable_versioning('dropped_cols');
ALTER TABLE dropped_cols DROP COLUMN x;
CREATE TABLE disabled_trg (id int PRIMARY KEY, v int);
INSERT INTO disabled_trg VALUES (1, 0);
SELECT motofinai.enable_versioning('disabled_trg');
ALTER TABLE disabled_trg DISABLE TRIGGER motofinai_versioning;
CREATE TYPE comp AS (a int);
CREATE SEQUENCE seq;
CREATE TABLE dropped_me (id int);
CREATE TABLE fuzz_dropped_oid AS SELECT 'dropped_me'::regclass::oid AS oid;
DROP TABLE dropped_me;
CREATE EXTENSION IF NOT EXISTS file_fdw;
CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE ft_file (id int, v int) SERVER files OPTIONS (filename '/dev/null', format 'csv');
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host :'host', port :'port', dbname :'db');
CREATE USER MAPPING FOR CURRENT_USER SERVER loopback OPTIONS (user 'postgres');
CREATE FOREIGN TABLE ft_loans (id bigint, notes text, version int, last_modified_at timestamptz)
    SERVER loopback OPTIONS (schema_name 'public', table_name 'loans_loanapplication');
DROP ROLE IF EXISTS fuzz_nobody;
CREATE ROLE fuzz_nobody;
GRANT USAGE ON SCHEMA motofinai TO fuzz_nobody;

CREATE SCHEMA fuzz;
CREATE TABLE fuzz.calls (id serial PRIMARY KEY, fn text NOT NULL, role text NOT NULL, sql text NOT NULL);
CREATE TABLE fuzz.results (id int PRIMARY KEY, sqlstate text NOT NULL, message text, ms numeric);

-- Argument values, as SQL expressions, by type.
CREATE TABLE fuzz.pool (type regtype, expr text);
INSERT INTO fuzz.pool
SELECT 'regclass'::regtype, unnest(ARRAY[
    'NULL', '''loans_loanapplication''', '''payments_payment''', '''inventory_stock''', '''loans_view''',
    '''loans_mv''', '''part_parent''', '''part_child''', '''part_empty''', '''no_pk''', '''text_pk''', '''pair_pk''',
    '''small_pk''', '''wrong_types''', '''gen_cols''', '''"Ho""stile; tab --"''', '''rls_tab''', '''unlogged_tab''',
    '''dropped_cols''', '''disabled_trg''', '''comp''', '''seq''', '''loans_loanapplication_pkey''', '''ft_file''',
    '''ft_loans''', '''pg_temp.fuzz_temp''', '''pg_catalog.pg_class''', '''pg_catalog.pg_authid''',
    '''information_schema.tables''', '''motofinai.versioning_config''', '''motofinai.check_runs''',
    '''motofinai.versioned_tables''', '''fuzz.results''', '0', '4294967295', '(SELECT oid FROM fuzz_dropped_oid)',
    '(SELECT reltoastrelid FROM pg_class WHERE relname = ''loans_loanapplication'')']) || '::regclass'
UNION ALL
SELECT 'bigint'::regtype, unnest(ARRAY['NULL', '0', '-1', '1', '2', '7', '32767', '32768', '2147483647', '2147483648',
    '-2147483648', '9223372036854775807', '(-9223372036854775807 - 1)', '900000001',
    '(SELECT max(id) FROM payments_payment)', '(SELECT max(id) FROM inventory_motor)',
    '(SELECT max(id) FROM loans_paymentschedule)']) || '::bigint'
UNION ALL
SELECT 'integer'::regtype, unnest(ARRAY['NULL', '0', '-1', '1', '60', '1000000', '2147483647', '(-2147483647 - 1)']) || '::integer'
UNION ALL
SELECT 'boolean'::regtype, unnest(ARRAY['NULL', 'true', 'false']) || '::boolean'
UNION ALL
SELECT 'text'::regtype, unnest(ARRAY['NULL', '''''', ''' ''', '''loan''', '''payment''', '''motor''', '''system''', '''quick''',
    '''LOAN''', ''' loan''', '''inventory''', '''version''', '''last_modified_at''', '''id''', '''notes''', '''ctid''',
    '''xmin''', '''tableoid''', '''expected''', '''increment''', '''x''''; DROP TABLE no_pk; --''', '''"version"''',
    '''versión ü 🚀''', 'repeat(''é'', 32)', 'repeat(''x'', 63)', 'repeat(''x'', 64)', 'repeat(''x'', 100000)',
    'E''tab\there\nnewline''', '''%s %n %x''', '''\''']) || '::text'
UNION ALL
SELECT 'jsonb'::regtype, unnest(ARRAY['NULL', '''{}''', '''[]''', '''null''', '''1''', '''"notes"''', '''{"notes": "fuzz"}''',
    '''{"notes": null}''', '''{"id": 5}''', '''{"version": 9}''', '''{"last_modified_at": "2020-01-01"}''',
    '''{"ctid": "(0,1)"}''', '''{"xmin": 1}''', '''{"tableoid": 1}''', '''{"nope": 1}''', '''{"": 1}''',
    '''{"a\"b; --": 1}''', '''{"notes": {"nested": [1, 2]}}''', '''{"loan_amount": "NaN"}''',
    '''{"loan_amount": 1e1000}''', '''{"submitted_at": "infinity"}''', '''{"status": "active", "status": "completed"}''',
    '''{"b": 1}''', '''{"a": 2147483648}''', '''{"v": "1"}''', '''{"v": 1.5}''', '''{"ü ñ": "y"}''',
    'jsonb_build_object(''notes'', repeat(''x'', 1000000))',
    '(SELECT jsonb_object_agg(''k'' || g, g) FROM generate_series(1, 100000) g)',
    '(repeat(''{"a": '', 200) || ''1'' || repeat(''}'', 200))::jsonb',
    '(repeat(''['', 10000) || repeat('']'', 10000))::jsonb',
    '(repeat(''['', 100000) || repeat('']'', 100000))::jsonb']) || '::jsonb';

-- The functions under test: every member function of the extension.
CREATE VIEW fuzz.functions AS
SELECT p.oid, p.oid::regprocedure::text AS signature, p.pronargs, p.pronargdefaults, p.proretset,
       ARRAY(SELECT unnest(p.proargtypes::regtype[])) AS types, p.proargnames AS names, p.prorettype::regtype::text AS rettype
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'motofinai_consistency');

-- A sensible value for each parameter, by name, else by type.
CREATE FUNCTION fuzz.baseline(name text, type regtype) RETURNS text LANGUAGE sql AS $$
    SELECT CASE name WHEN 'scope' THEN '''loan''::text' WHEN 'version_column' THEN '''version''::text'
                     WHEN 'modified_column' THEN '''last_modified_at''::text' WHEN 'protocol' THEN '''expected''::text'
                     WHEN 'update_fields' THEN '''{"notes": "fuzz"}''::jsonb' WHEN 'hours' THEN '1::integer'
                     WHEN 'minutes' THEN '60::integer' WHEN 'max_rows' THEN '20::integer'
                     WHEN 'apply' THEN 'false::boolean' WHEN 'nowait' THEN 'false::boolean'
           ELSE CASE type WHEN 'regclass'::regtype THEN '''loans_loanapplication''::regclass'
                          WHEN 'boolean'::regtype THEN 'true::boolean' WHEN 'text'::regtype THEN '''loan''::text'
                          WHEN 'jsonb'::regtype THEN '''{}''::jsonb' ELSE '1::' || type::text END END
$$;

CREATE FUNCTION fuzz.call_sql(f fuzz.functions, args text[]) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN f.proretset THEN 'SELECT * FROM ' ELSE 'SELECT ' END
           || (SELECT format('%I.%I', nspname, proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = pronamespace
                WHERE p.oid = f.oid)
           || '(' || coalesce(array_to_string(args, ', '), '') || ')'
$$;

-- For every function: all defaults omitted; each argument through its whole
-- pool with the others at their baseline (as superuser and as fuzz_nobody);
-- then `random_calls` random combinations.
CREATE FUNCTION fuzz.generate(random_calls integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    f fuzz.functions;
    base text[];
    args text[];
    v text;
    i integer;
BEGIN
    PERFORM setseed(0.42);
    FOR f IN SELECT * FROM fuzz.functions ORDER BY signature LOOP
        base := ARRAY(SELECT fuzz.baseline(f.names[k], f.types[k]) FROM generate_subscripts(f.types, 1) k ORDER BY k);
        INSERT INTO fuzz.calls (fn, role, sql)
        SELECT f.signature, r, fuzz.call_sql(f, base[1:f.pronargs - f.pronargdefaults])
          FROM unnest('{postgres,fuzz_nobody}'::text[]) r;
        FOR i IN 1 .. f.pronargs LOOP
            FOR v IN SELECT expr FROM fuzz.pool WHERE type = f.types[i] LOOP
                args := base;
                args[i] := v;
                INSERT INTO fuzz.calls (fn, role, sql)
                SELECT f.signature, r, fuzz.call_sql(f, args) FROM unnest('{postgres,fuzz_nobody}'::text[]) r;
            END LOOP;
        END LOOP;
        IF f.pronargs > 1 THEN
            FOR i IN 1 .. random_calls LOOP
                args := ARRAY(SELECT (SELECT expr FROM fuzz.pool WHERE type = f.types[k] AND k IS NOT NULL ORDER BY random() LIMIT 1)
                                FROM generate_subscripts(f.types, 1) k ORDER BY k);
                INSERT INTO fuzz.calls (fn, role, sql) VALUES (f.signature, 'postgres', fuzz.call_sql(f, args));
            END LOOP;
        END IF;
    END LOOP;
    RETURN (SELECT count(*) FROM fuzz.calls);
END $$;

-- Run one call in a subtransaction that is always rolled back (so calls do
-- not change what later calls see), and record its SQLSTATE.
CREATE FUNCTION fuzz.run(call_id integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c fuzz.calls;
    st text;
    msg text;
    t0 timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO c FROM fuzz.calls WHERE id = call_id;
    BEGIN
        IF c.role <> 'postgres' THEN EXECUTE format('SET LOCAL ROLE %I', c.role); END IF;
        EXECUTE c.sql;
        RAISE EXCEPTION USING ERRCODE = 'MFZZZ';
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    INSERT INTO fuzz.results VALUES (call_id, CASE st WHEN 'MFZZZ' THEN 'ok' ELSE st END,
        CASE WHEN st <> 'MFZZZ' THEN left(msg, 300) END,
        round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1));
END $$;

-- The trigger functions misused: every timing, level and event, on a table
-- and a view, with missing, unknown and malformed arguments.
CREATE TABLE trg_tab (id int PRIMARY KEY, v int, version int NOT NULL DEFAULT 1,
                      last_modified_at timestamptz NOT NULL DEFAULT now(), code text);
INSERT INTO trg_tab (id, v) VALUES (1, 0);
CREATE VIEW trg_view AS SELECT * FROM trg_tab;
CREATE FUNCTION fuzz.generate_triggers() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    dml constant jsonb := '{"INSERT": "INSERT INTO %s (id, v) VALUES (2, 0)", "UPDATE": "UPDATE %s SET v = v + 1",
                            "DELETE": "DELETE FROM %s", "TRUNCATE": "TRUNCATE %s"}';
    n integer := 0;
    f text; timing text; level text; ev text; args text; rel text;
BEGIN
    FOR f, timing, level, ev, args, rel IN
        SELECT * FROM unnest('{motofinai.version_trigger,motofinai.enforcement_mark,motofinai.enforcement_check,motofinai.forget_dropped_tables}'::text[]) f,
             unnest('{BEFORE,AFTER,INSTEAD OF}'::text[]) t, unnest('{ROW,STATEMENT}'::text[]) l,
             unnest('{INSERT,UPDATE,DELETE,TRUNCATE}'::text[]) e,
             unnest(ARRAY['', '''version''', '''version'', ''last_modified_at'', ''expected'', ''false''',
                          '''nope'', ''last_modified_at'', ''expected'', ''false''',
                          '''version'', ''code'', ''expected'', ''false''', '''code'', ''last_modified_at'', ''expected'', ''false''',
                          '''version'', ''version'', ''expected'', ''false''', '''version'', ''last_modified_at'', ''bogus'', ''false''',
                          '''version'', ''last_modified_at'', ''increment'', ''maybe''',
                          '''version'', ''last_modified_at'', ''expected'', ''false'', ''extra''']) a,
             unnest('{trg_tab,trg_view}'::text[]) r
         WHERE (t = 'INSTEAD OF') = (r = 'trg_view') AND NOT (t = 'INSTEAD OF' AND l = 'STATEMENT')
           AND NOT (e = 'TRUNCATE' AND (l = 'ROW' OR r = 'trg_view'))
    LOOP
        INSERT INTO fuzz.calls (fn, role, sql) VALUES (f || '() as ' || lower(timing || ' ' || level || ' ' || ev) || ' trigger', 'postgres',
            format('CREATE TRIGGER fz %s %s ON %s FOR EACH %s EXECUTE FUNCTION %s(%s); ', timing, ev, rel, level, f, args)
            || format(dml ->> ev, rel));
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
