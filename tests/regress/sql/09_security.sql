-- Privilege escalation through our objects. Only one function runs as its
-- owner (SECURITY DEFINER): the sql_drop event trigger's, which must forget
-- a dropped table's registration and statistics whoever drops it.
SELECT p.proname, p.prosecdef
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'motofinai_consistency')
   AND d.deptype = 'e' AND p.prosecdef;
CREATE TABLE guarded (id int PRIMARY KEY, v int);
INSERT INTO guarded VALUES (1, 0);
SELECT motofinai.enable_versioning('guarded', strict => true);
CREATE ROLE regress_mfc_mallory;
GRANT USAGE ON SCHEMA motofinai TO regress_mfc_mallory;
GRANT CREATE ON SCHEMA public TO regress_mfc_mallory;
GRANT SELECT ON guarded TO regress_mfc_mallory;
SET ROLE regress_mfc_mallory;
-- The definer function cannot be called directly, and what it calls is not granted.
SELECT show_error($$SELECT motofinai.forget_dropped_tables()$$);
SELECT show_error($$SELECT motofinai.conflict_stats_forget(ARRAY['guarded'::regclass::oid])$$);
-- The configuration is readable by all and writable only by its owner.
SELECT table_name, strict FROM motofinai.versioned_tables WHERE table_name = 'guarded'::regclass;
SELECT show_error($$UPDATE motofinai.versioning_config SET strict = false$$);
SELECT show_error($$DELETE FROM motofinai.versioning_config$$);
SELECT show_error($$INSERT INTO motofinai.versioning_config (tbl, version_column, modified_column, protocol, strict)
                    VALUES ('guarded', 'v', 'id', 'expected', false)$$);
SELECT show_error($$DELETE FROM motofinai.check_runs$$);
-- Our functions do for a role only what it may do itself.
SELECT show_error($$SELECT motofinai.disable_versioning('guarded')$$);
SELECT show_error($$SELECT motofinai.enable_versioning('guarded', strict => false)$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('guarded', 1, 1, '{"v": 9}')$$);
SELECT show_error($$SELECT motofinai.fix_consistency('system', apply => true)$$) LIKE '42501%' AS refused;
-- Dropping its own table runs the definer function for that table only.
CREATE TABLE mallory_own (id int PRIMARY KEY);
DROP TABLE mallory_own;
RESET ROLE;
SELECT table_name, strict, trigger_enabled FROM motofinai.versioned_tables WHERE table_name = 'guarded'::regclass;
SELECT show_error($$UPDATE guarded SET v = 1$$);
DROP TABLE guarded;
REVOKE CREATE ON SCHEMA public FROM regress_mfc_mallory;
DROP OWNED BY regress_mfc_mallory;
DROP ROLE regress_mfc_mallory;

-- A run records its history with the rights its check needed: a role that
-- may read the inventory (motors, stock, loans) and write the history
-- records an inventory run without any right on payments.
CREATE ROLE regress_mfc_clerk;
GRANT USAGE ON SCHEMA motofinai TO regress_mfc_clerk;
GRANT SELECT ON inventory_motor, inventory_stock, loans_loanapplication TO regress_mfc_clerk;
GRANT INSERT, UPDATE ON motofinai.check_runs, motofinai.finding_history TO regress_mfc_clerk;
SET ROLE regress_mfc_clerk;
SELECT show_error($$SELECT count(*) FROM payments_payment$$) LIKE '42501%' AS payments_refused;
SELECT scope, new_errors + new_warnings = errors + warnings AS all_new FROM motofinai.run_check('inventory');
RESET ROLE;
DROP OWNED BY regress_mfc_clerk;
DROP ROLE regress_mfc_clerk;

-- keys_indexed_twice reads a hash index alone: it needs SELECT on the
-- indexed column, and where row security applies to the caller it returns
-- every key (the index would tell of rows the policy hides).
CREATE TABLE keyed (id int PRIMARY KEY, ref text, owner name);
INSERT INTO keyed SELECT g, 'K' || (g % 50), CASE WHEN g % 2 = 0 THEN 'regress_mfc_reader' ELSE 'other' END
  FROM generate_series(1, 60) g;
CREATE INDEX keyed_ref_hash ON keyed USING hash (ref);
SELECT motofinai.keys_indexed_twice('keyed_ref_hash', ARRAY['K1', 'K20', 'K49', NULL]);
CREATE ROLE regress_mfc_reader;
GRANT USAGE ON SCHEMA motofinai TO regress_mfc_reader;
SET ROLE regress_mfc_reader;
SELECT show_error($$SELECT motofinai.keys_indexed_twice('keyed_ref_hash', ARRAY['K1'])$$);
RESET ROLE;
GRANT SELECT (ref) ON keyed TO regress_mfc_reader;
SET ROLE regress_mfc_reader;
SELECT motofinai.keys_indexed_twice('keyed_ref_hash', ARRAY['K1', 'K20', 'K49']);
RESET ROLE;
GRANT SELECT ON keyed TO regress_mfc_reader;
ALTER TABLE keyed ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON keyed FOR SELECT USING (owner = current_user);
SET ROLE regress_mfc_reader;
SELECT motofinai.keys_indexed_twice('keyed_ref_hash', ARRAY['K1', 'K20', 'K49']);
RESET ROLE;
-- Not a hash index on one text column, not an index.
SELECT show_error($$SELECT motofinai.keys_indexed_twice('keyed_pkey', ARRAY['K1'])$$);
SELECT show_error($$SELECT motofinai.keys_indexed_twice('keyed', ARRAY['K1'])$$);
SELECT show_error($$SELECT motofinai.keys_indexed_twice(1::regclass, ARRAY['K1'])$$);
DROP TABLE keyed;
DROP OWNED BY regress_mfc_reader;
DROP ROLE regress_mfc_reader;
