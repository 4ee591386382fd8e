-- Row helpers: get_for_update, safe_update_with_version, safe_delete_with_version.
CREATE TABLE item (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2), due date,
                   tags text[], doubled numeric GENERATED ALWAYS AS (price * 2) STORED);
INSERT INTO item (id, name, price, due) VALUES (1, 'helmet', 10.50, '2026-01-31'), (2, 'gloves', 5, NULL);
SELECT motofinai.enable_versioning('item');

-- get_for_update: the row as jsonb, at the expected version or any.
SELECT motofinai.get_for_update('item', 1, 1) - 'last_modified_at' AS row;
SELECT motofinai.get_for_update('item', 1) ->> 'name' AS any_version;
SELECT show_error($$SELECT motofinai.get_for_update('item', 1, 7)$$);
SELECT show_error($$SELECT motofinai.get_for_update('item', 99, 1)$$);
-- It really locks the row: the lock is visible in pg_locks while the transaction is open.
BEGIN;
SELECT motofinai.get_for_update('item', 2, 1) ->> 'id' AS locked;
SELECT count(*) > 0 AS row_locked FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
 WHERE c.relname = 'item' AND l.mode = 'RowShareLock' AND l.pid = pg_backend_pid();
COMMIT;

-- safe_update_with_version: values coerced by each column's type; returns the new row.
SELECT motofinai.safe_update_with_version('item', 1, 1,
    '{"name": "helmet XL", "price": "12.345", "due": "2026-02-28", "tags": ["red", "large"]}') - 'last_modified_at' AS row;
SELECT motofinai.safe_update_with_version('item', 1, 2, '{"price": 99999999.99, "due": null}') - 'last_modified_at' AS row;
-- A stale version: the conflict, nothing changed.
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 1, '{"name": "lost"}')$$);
SELECT name, version FROM item WHERE id = 1;
-- Every key must be a real, updatable column.
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"colour": "red"}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"id": 5}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"version": 5}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"last_modified_at": "2020-01-01"}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"doubled": 1}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"name\"; DROP TABLE item; --": 1}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '[1, 2]')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '"name"')$$);
-- Wrong types and NOT NULL come back as PostgreSQL's own errors.
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"price": "cheap"}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"due": "someday"}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"name": null}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"price": 1e20}')$$);
SELECT name, price, version FROM item WHERE id = 1;
-- Missing row and NULL arguments.
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 42, 1, '{"name": "x"}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', NULL, 1, '{"name": "x"}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, NULL, '{"name": "x"}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, NULL)$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version(NULL, 1, 3, '{"name": "x"}')$$);
SELECT show_error($$SELECT motofinai.get_for_update('item', NULL)$$);
SELECT show_error($$SELECT motofinai.get_for_update('item', 1, 3, NULL)$$);

-- Under the increment protocol the helper states read + 1 itself.
SELECT motofinai.enable_versioning('item', protocol => 'increment', strict => true);
SELECT motofinai.safe_update_with_version('item', 2, 1, '{"name": "gloves v2"}') ->> 'version' AS version;
SELECT motofinai.enable_versioning('item');

-- safe_delete_with_version: true when deleted, false when already gone, the conflict when changed.
SELECT show_error($$SELECT motofinai.safe_delete_with_version('item', 2, 1)$$);
SELECT motofinai.safe_delete_with_version('item', 2, 2);
SELECT motofinai.safe_delete_with_version('item', 2, 2);
SELECT show_error($$SELECT motofinai.safe_delete_with_version('item', NULL, 2)$$);

-- Tables the helpers cannot address by a single integer key, or that are not versioned.
CREATE TABLE textkey (code text PRIMARY KEY);
SELECT motofinai.enable_versioning('textkey', create_index => false);
SELECT show_error($$SELECT motofinai.get_for_update('textkey', 1)$$);
SELECT show_error($$SELECT motofinai.get_for_update('pair', 1)$$);
SELECT show_error($$SELECT motofinai.get_for_update('keyless', 1)$$);
CREATE TABLE plain (id int PRIMARY KEY, v int);
SELECT show_error($$SELECT motofinai.get_for_update('plain', 1)$$);
SELECT show_error($$SELECT motofinai.safe_delete_with_version('big_view', 1, 1)$$);
-- A small integer key works.
CREATE TABLE smallkey (id smallint PRIMARY KEY, v int);
INSERT INTO smallkey VALUES (7, 0);
SELECT motofinai.enable_versioning('smallkey', create_index => false);
SELECT motofinai.safe_update_with_version('smallkey', 7, 1, '{"v": 1}') - 'last_modified_at' AS row;
SELECT show_error($$SELECT motofinai.get_for_update('smallkey', 100000, 1)$$);

-- Privileges: the helpers run as the caller and can do no more than its own SQL.
CREATE ROLE regress_mfc_reader;
CREATE ROLE regress_mfc_clerk;
GRANT USAGE ON SCHEMA motofinai TO regress_mfc_reader, regress_mfc_clerk;
GRANT SELECT ON item TO regress_mfc_reader;
GRANT SELECT, UPDATE, DELETE ON item TO regress_mfc_clerk;
SET ROLE regress_mfc_reader;
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 1, 3, '{"name": "stolen"}')$$);
SELECT show_error($$SELECT motofinai.get_for_update('item', 1, 3)$$);
SELECT show_error($$SELECT motofinai.safe_delete_with_version('item', 1, 3)$$);
SELECT show_error($$SELECT motofinai.enable_versioning('item')$$);
RESET ROLE;
SELECT name, version FROM item WHERE id = 1;
-- Row-level security is honoured: the clerk sees and changes only cheap items.
INSERT INTO item (id, name, price) VALUES (3, 'chain', 1), (4, 'engine', 5000);
ALTER TABLE item ENABLE ROW LEVEL SECURITY;
CREATE POLICY cheap ON item USING (price < 100);
CREATE POLICY see_all ON item FOR SELECT TO regress_mfc_clerk USING (true);
SET ROLE regress_mfc_clerk;
SELECT motofinai.safe_update_with_version('item', 3, 1, '{"name": "chain 2"}') ->> 'name' AS name;
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 4, 1, '{"name": "mine"}')$$);
SELECT show_error($$SELECT motofinai.safe_delete_with_version('item', 4, 1)$$);
RESET ROLE;
SELECT id, name, version FROM item WHERE id IN (3, 4) ORDER BY id;
ALTER TABLE item DISABLE ROW LEVEL SECURITY;
DROP OWNED BY regress_mfc_reader, regress_mfc_clerk;
DROP ROLE regress_mfc_reader, regress_mfc_clerk;

-- A hostile object named like one of ours earlier in search_path is never called.
CREATE SCHEMA evil;
CREATE FUNCTION evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS $$ SELECT '"pwned"'::jsonb $$;
CREATE FUNCTION evil.jsonb_populate_record(anyelement, jsonb) RETURNS anyelement LANGUAGE sql AS $$ SELECT $1 $$;
SET search_path = evil, public;
SELECT motofinai.get_for_update('item', 3) ->> 'name' AS name;
SELECT motofinai.safe_update_with_version('item', 3, 2, '{"name": "chain 3"}') ->> 'name' AS name;
RESET search_path;
DROP SCHEMA evil CASCADE;

-- In a read-only transaction (and so on a hot standby) the helpers that
-- write refuse up front with 25006, not an internal error.
BEGIN READ ONLY;
SELECT show_error($$SELECT motofinai.get_for_update('item', 3)$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('item', 3, 2, '{"name": "x"}')$$);
SELECT show_error($$SELECT motofinai.safe_delete_with_version('item', 3, 2)$$);
SELECT show_error($$SELECT motofinai.enable_versioning('item')$$);
ROLLBACK;
-- jsonb nested deeper than serde_json's 128 levels goes in and out untouched.
CREATE TABLE deep (id int PRIMARY KEY, doc jsonb);
INSERT INTO deep VALUES (1, (repeat('[', 300) || repeat(']', 300))::jsonb);
SELECT motofinai.enable_versioning('deep');
SELECT length(motofinai.get_for_update('deep', 1) ->> 'doc') AS doc_chars;
SELECT length(motofinai.safe_update_with_version('deep', 1, 1,
       jsonb_build_object('doc', (repeat('{"a":', 200) || '1' || repeat('}', 200))::jsonb)) ->> 'doc') AS doc_chars;
SELECT show_error($$SELECT motofinai.safe_update_with_version('deep', 1, 2, '[1, 2]')$$);
DROP TABLE deep;
