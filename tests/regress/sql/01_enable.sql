-- enable_versioning / disable_versioning / the versioned_tables view.
SELECT motofinai.enable_versioning('loans_loanapplication');
SELECT motofinai.enable_versioning('loans_paymentschedule');
SELECT motofinai.enable_versioning('payments_payment');
SELECT motofinai.enable_versioning('inventory_motor');
SELECT table_name, version_column, modified_column, protocol, strict, trigger_present, trigger_enabled
  FROM motofinai.versioned_tables ORDER BY table_name::text;

-- The registration (and the check history) are extension configuration: pg_dump keeps their rows.
SELECT c::regclass AS dumped_config FROM pg_extension, unnest(extconfig) c WHERE extname = 'motofinai_consistency';

-- The columns and the seed's index.
SELECT attname, format_type(atttypid, atttypmod), attnotnull, pg_get_expr(adbin, adrelid) AS "default"
  FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
 WHERE attrelid = 'loans_loanapplication'::regclass AND attname IN ('version', 'last_modified_at')
 ORDER BY attnum;
SELECT indexdef FROM pg_indexes WHERE tablename = 'loans_loanapplication' AND indexdef LIKE '%version%';

-- Idempotent: a second call adds nothing.
SELECT motofinai.enable_versioning('loans_loanapplication');
SELECT count(*) AS version_indexes FROM pg_indexes
 WHERE tablename = 'loans_loanapplication' AND indexdef LIKE '%version%';
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'loans_loanapplication'::regclass AND NOT tgisinternal;

-- Re-running with other options updates them (and the trigger's arguments).
SELECT motofinai.enable_versioning('inventory_motor', protocol => 'increment', strict => true);
SELECT protocol, strict FROM motofinai.versioned_tables WHERE table_name = 'inventory_motor'::regclass;
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'inventory_motor'::regclass AND NOT tgisinternal;
SELECT motofinai.enable_versioning('inventory_motor');
SELECT protocol, strict FROM motofinai.versioned_tables WHERE table_name = 'inventory_motor'::regclass;

-- Adding the columns does not rewrite the table.
CREATE TABLE big (id bigint PRIMARY KEY, payload text);
INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, 1000) g;
SELECT relfilenode AS before_enable FROM pg_class WHERE relname = 'big' \gset
SELECT motofinai.enable_versioning('big', create_index => false);
SELECT relfilenode = :before_enable AS not_rewritten FROM pg_class WHERE relname = 'big';
SELECT count(*) AS rows, min(version), max(version), count(DISTINCT last_modified_at) AS stamps FROM big;
SELECT count(*) AS version_indexes FROM pg_indexes WHERE tablename = 'big' AND indexdef LIKE '%version%';

-- An existing int2/int8 version column and a custom column name are accepted as they are.
CREATE TABLE legacy (id integer PRIMARY KEY, rev bigint NOT NULL DEFAULT 7, touched timestamptz NOT NULL DEFAULT now());
SELECT motofinai.enable_versioning('legacy', 'rev', 'touched');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'legacy'::regclass AND attname = 'rev';
CREATE TABLE small (id integer PRIMARY KEY, version smallint NOT NULL DEFAULT 1);
SELECT motofinai.enable_versioning('small');

-- Hostile identifiers are quoted, never spliced (columns that are not plain
-- identifiers must exist already).
CREATE TABLE "Odd ""Name""; DROP TABLE big; --" (id int PRIMARY KEY, v int, "ver""; --" integer NOT NULL DEFAULT 1,
                                                 "mod ified ü" timestamptz NOT NULL DEFAULT now());
SELECT motofinai.enable_versioning('"Odd ""Name""; DROP TABLE big; --"', 'ver"; --', 'mod ified ü');
SELECT attname FROM pg_attribute WHERE attrelid = '"Odd ""Name""; DROP TABLE big; --"'::regclass AND attnum > 0 ORDER BY attnum;
INSERT INTO "Odd ""Name""; DROP TABLE big; --" (id, v) VALUES (1, 1);
UPDATE "Odd ""Name""; DROP TABLE big; --" SET v = 2, "ver""; --" = 1;
SELECT id, v, "ver""; --" FROM "Odd ""Name""; DROP TABLE big; --";
SELECT count(*) AS big_still_there FROM big;

-- Bad input: a clear error with a proper SQLSTATE.
SELECT show_error($$SELECT motofinai.enable_versioning(NULL)$$);
SELECT show_error($$SELECT motofinai.enable_versioning('big', NULL)$$);
SELECT show_error($$SELECT motofinai.enable_versioning('big', protocol => 'optimistic')$$);
SELECT show_error($$SELECT motofinai.enable_versioning('big', protocol => NULL)$$);
SELECT show_error($$SELECT motofinai.enable_versioning('big', strict => NULL)$$);
SELECT show_error($$SELECT motofinai.enable_versioning('big', 'same', 'same')$$);
SELECT show_error($$SELECT motofinai.enable_versioning('big', '')$$);
SELECT show_error($$SELECT motofinai.enable_versioning('big', repeat('x', 64))$$);
CREATE TABLE typed (id int PRIMARY KEY, payload text);
SELECT show_error($$SELECT motofinai.enable_versioning('typed', 'payload')$$);
SELECT show_error($$SELECT motofinai.enable_versioning('typed', 'version', 'payload')$$);
DROP TABLE typed;
SELECT show_error($$SELECT motofinai.enable_versioning('no_such_table')$$);
SELECT show_error($$SELECT motofinai.enable_versioning(4294967295::oid::regclass)$$);
CREATE VIEW big_view AS SELECT * FROM big;
SELECT show_error($$SELECT motofinai.enable_versioning('big_view')$$);
CREATE SEQUENCE some_seq;
SELECT show_error($$SELECT motofinai.enable_versioning('some_seq')$$);
SELECT show_error($$SELECT motofinai.disable_versioning(NULL)$$);

-- disable_versioning drops the trigger, keeps the columns and the data.
SELECT motofinai.disable_versioning('big');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'big'::regclass AND NOT tgisinternal;
SELECT count(*) AS registered FROM motofinai.versioned_tables WHERE table_name = 'big'::regclass;
UPDATE big SET payload = 'x' WHERE id = 1;
SELECT version FROM big WHERE id = 1;
SELECT motofinai.disable_versioning('big');

-- A disabled trigger shows in the view; a dropped table leaves no registration.
ALTER TABLE legacy DISABLE TRIGGER motofinai_versioning;
SELECT table_name, trigger_present, trigger_enabled FROM motofinai.versioned_tables WHERE table_name = 'legacy'::regclass;
ALTER TABLE legacy ENABLE TRIGGER motofinai_versioning;
DROP TABLE small;
SELECT table_name FROM motofinai.versioned_tables ORDER BY table_name::text;

-- A temporary table cannot be versioned: its registration would outlive it
-- (no drop event fires at session end).
CREATE TEMP TABLE scratch (id int PRIMARY KEY);
SELECT split_part(show_error($$SELECT motofinai.enable_versioning('scratch')$$), E'\n', 1) AS error;
-- A hand-made trigger with a malformed strict flag is refused at its first row.
CREATE TABLE handmade (id int PRIMARY KEY, v int, version int NOT NULL DEFAULT 1,
                       last_modified_at timestamptz NOT NULL DEFAULT now());
INSERT INTO handmade (id, v) VALUES (1, 0);
CREATE TRIGGER t BEFORE UPDATE ON handmade FOR EACH ROW
    EXECUTE FUNCTION motofinai.version_trigger('version', 'last_modified_at', 'expected', 'maybe');
SELECT show_error($$UPDATE handmade SET v = 1$$);
DROP TABLE handmade;

-- Re-enabling never moves versioning to other columns: a typo or another
-- name is refused (55000) and changes nothing; protocol, strict and the
-- index may change.
CREATE TABLE reg (id int PRIMARY KEY, note text);
SELECT motofinai.enable_versioning('reg');
SELECT show_error($$SELECT motofinai.enable_versioning('reg', version_column => 'no such col')$$);
SELECT split_part(show_error($$SELECT motofinai.enable_versioning('reg', version_column => 'verison')$$), E'\n', 1) AS error;
SELECT split_part(show_error($$SELECT motofinai.enable_versioning('reg', modified_column => 'changed_at')$$), E'\n', 1) AS error;
SELECT attname FROM pg_attribute WHERE attrelid = 'reg'::regclass AND attnum > 0 ORDER BY attnum;
SELECT motofinai.enable_versioning('reg', protocol => 'increment', strict => true, create_index => false);
SELECT version_column, protocol, strict, trigger_arguments, trigger_matches
  FROM motofinai.versioned_tables WHERE table_name = 'reg'::regclass;
INSERT INTO reg (id, note) VALUES (1, 'a');
SELECT split_part(show_error($$UPDATE reg SET note = 'b', version = 5 WHERE id = 1$$), E'\n', 1) AS stale;
-- Deliberately: disable, then enable on other columns; or follow a rename.
SELECT motofinai.disable_versioning('reg');
SELECT motofinai.enable_versioning('reg', version_column => 'revision');
ALTER TABLE reg RENAME COLUMN revision TO rev;
SELECT motofinai.enable_versioning('reg', version_column => 'rev');
SELECT version_column, trigger_arguments, trigger_matches FROM motofinai.versioned_tables WHERE table_name = 'reg'::regclass;
-- A column enable_versioning would add must be a plain identifier (42602);
-- an existing one may have any name.
CREATE TABLE reg2 (id int PRIMARY KEY, "My Version" integer NOT NULL DEFAULT 1);
SELECT show_error($$SELECT motofinai.enable_versioning('reg2', version_column => 'Version')$$);
SELECT split_part(show_error($$SELECT motofinai.enable_versioning('reg2', modified_column => 'modified at')$$), E'\n', 1) AS error;
SELECT motofinai.enable_versioning('reg2', version_column => 'My Version');
-- Drift: a trigger that disagrees with the registration, or one it does not
-- know, is shown by versioned_tables and reported by the checks.
CREATE OR REPLACE TRIGGER motofinai_versioning BEFORE INSERT OR UPDATE ON reg FOR EACH ROW
    EXECUTE FUNCTION motofinai.version_trigger('version', 'last_modified_at', 'expected', 'false');
CREATE TRIGGER stray BEFORE UPDATE ON reg2 FOR EACH ROW
    EXECUTE FUNCTION motofinai.version_trigger('My Version', 'last_modified_at', 'expected', 'false');
SELECT table_name, trigger_arguments, trigger_matches FROM motofinai.versioned_tables
 WHERE table_name IN ('reg'::regclass, 'reg2'::regclass) ORDER BY 1::text;
SELECT severity, code, message, details FROM motofinai.check_structural_consistency() WHERE code = 'versioning_mismatch';
SELECT count(*) AS in_quick_check FROM motofinai.check_quick_consistency() WHERE code = 'versioning_mismatch';
-- enable_versioning reinstalls the registered trigger.
SELECT motofinai.enable_versioning('reg', version_column => 'rev');
DROP TRIGGER stray ON reg2;
SELECT count(*) AS mismatches FROM motofinai.check_structural_consistency() WHERE code = 'versioning_mismatch';
DROP TABLE reg, reg2;
