-- The versioning trigger: the rules decided by whether the UPDATE states the version.
CREATE TABLE acct (id bigint PRIMARY KEY, owner text, balance numeric(12,2));
INSERT INTO acct VALUES (1, 'ana', 100), (2, 'ben', 200), (3, 'cy', 300);
SELECT motofinai.enable_versioning('acct');

-- Protocol "expected": state the version you read.
UPDATE acct SET balance = 110, version = 1 WHERE id = 1;
SELECT id, balance, version FROM acct WHERE id = 1;
-- A stale version is a conflict, with its fields set.
SELECT show_error($$UPDATE acct SET balance = 120, version = 1 WHERE id = 1$$);
SELECT show_error($$UPDATE acct SET balance = 120, version = 3 WHERE id = 1$$);
SELECT id, balance, version FROM acct WHERE id = 1;
-- Stating read+1 under "expected" is a conflict too.
SELECT show_error($$UPDATE acct SET version = version + 1 WHERE id = 1$$);

-- A blind write (version not in the SET list) bumps the version anyway.
UPDATE acct SET balance = balance + 1;
SELECT id, balance, version FROM acct ORDER BY id;
-- The stamp is the transaction's timestamp.
BEGIN;
UPDATE acct SET owner = 'cyd' WHERE id = 3;
SELECT last_modified_at = now() AS stamped_now, version FROM acct WHERE id = 3;
COMMIT;
-- Updating to the same values still counts as a change.
UPDATE acct SET owner = owner WHERE id = 3;
SELECT version FROM acct WHERE id = 3;
-- A user cannot set last_modified_at by hand on UPDATE.
UPDATE acct SET last_modified_at = '2000-01-01' WHERE id = 3;
SELECT last_modified_at > '2000-01-01' AS overwritten FROM acct WHERE id = 3;

-- Protocol "increment": write read + 1.
SELECT motofinai.enable_versioning('acct', protocol => 'increment');
UPDATE acct SET balance = 0, version = 3 WHERE id = 2;
SELECT id, balance, version FROM acct WHERE id = 2;
SELECT show_error($$UPDATE acct SET balance = 1, version = 3 WHERE id = 2$$);
SELECT show_error($$UPDATE acct SET balance = 1, version = 5 WHERE id = 2$$);
UPDATE acct SET version = version + 1 WHERE id = 2;
SELECT id, version FROM acct WHERE id = 2;

-- Strict mode: a blind write is rejected with its own SQLSTATE.
SELECT motofinai.enable_versioning('acct', strict => true);
SELECT show_error($$UPDATE acct SET balance = 5 WHERE id = 1$$);
UPDATE acct SET balance = 5, version = 3 WHERE id = 1;
SELECT id, balance, version FROM acct WHERE id = 1;
SELECT motofinai.enable_versioning('acct');

-- NULL versions: a clear error, never a silent pass.
SELECT show_error($$UPDATE acct SET version = NULL WHERE id = 1$$);
CREATE TABLE loose (id int PRIMARY KEY, version int, last_modified_at timestamptz);
INSERT INTO loose VALUES (1, NULL, NULL);
SELECT motofinai.enable_versioning('loose');
SELECT id, version, last_modified_at IS NOT NULL AS stamped FROM loose;
ALTER TABLE loose DISABLE TRIGGER motofinai_versioning;
UPDATE loose SET version = NULL;
ALTER TABLE loose ENABLE TRIGGER motofinai_versioning;
SELECT show_error($$UPDATE loose SET id = 1$$);

-- At the type's maximum: an error, never a wrap-around.
CREATE TABLE tiny (id int PRIMARY KEY, version smallint NOT NULL DEFAULT 1);
SELECT motofinai.enable_versioning('tiny', create_index => false);
INSERT INTO tiny VALUES (1, 32766);
UPDATE tiny SET id = 1;
SELECT version FROM tiny;
SELECT show_error($$UPDATE tiny SET id = 1$$);
SELECT version FROM tiny;

-- INSERT keeps a given version >= 1 and a given stamp (so dump/restore keeps
-- them) and fills what is missing.
INSERT INTO acct (id, owner, balance) VALUES (10, 'dee', 1);
INSERT INTO acct (id, owner, balance, version, last_modified_at) VALUES (11, 'eve', 1, 42, '2020-02-02 02:02:02+00');
INSERT INTO acct (id, owner, balance, version, last_modified_at) VALUES (12, 'fay', 1, NULL, NULL);
SELECT id, version, last_modified_at = '2020-02-02 02:02:02+00' AS kept_stamp, last_modified_at IS NOT NULL AS stamped
  FROM acct WHERE id >= 10 ORDER BY id;
SELECT show_error($$INSERT INTO acct (id, version) VALUES (13, 0)$$);
SELECT show_error($$INSERT INTO acct (id, version) VALUES (13, -5)$$);

-- Multi-row UPDATE ... FROM stating each row's own version.
UPDATE acct a SET balance = a.balance + 1, version = v.version
  FROM (SELECT id, version FROM acct WHERE id IN (10, 11)) v WHERE a.id = v.id;
SELECT id, version FROM acct WHERE id IN (10, 11) ORDER BY id;

-- The per-relation cache follows schema changes (relcache invalidation).
ALTER TABLE acct ADD COLUMN note text;
ALTER TABLE acct DROP COLUMN owner;
UPDATE acct SET note = 'after drop', version = 2 WHERE id = 10;
SELECT id, note, version FROM acct WHERE id = 10;
ALTER TABLE acct RENAME COLUMN version TO revision;
SELECT show_error($$UPDATE acct SET note = 'renamed' WHERE id = 10$$);
SELECT motofinai.enable_versioning('acct', 'revision');
UPDATE acct SET note = 'renamed', revision = 3 WHERE id = 10;
SELECT id, note, revision FROM acct WHERE id = 10;
SELECT show_error($$UPDATE acct SET note = 'x', revision = 3 WHERE id = 10$$);

-- Composite and missing keys still get a precise message.
CREATE TABLE pair (a int, b text, v int, PRIMARY KEY (a, b));
INSERT INTO pair VALUES (1, 'x', 0);
SELECT motofinai.enable_versioning('pair', create_index => false);
SELECT show_error($$UPDATE pair SET v = 1, version = 7$$);
CREATE TABLE keyless (v int);
INSERT INTO keyless VALUES (1);
SELECT motofinai.enable_versioning('keyless', create_index => false);
SELECT show_error($$UPDATE keyless SET v = 2, version = 9$$);

-- The trigger function cannot be misused.
SELECT show_error($$SELECT motofinai.version_trigger()$$);
CREATE TABLE misuse (id int PRIMARY KEY, version int NOT NULL DEFAULT 1, last_modified_at timestamptz NOT NULL DEFAULT now());
CREATE TRIGGER wrong AFTER UPDATE ON misuse FOR EACH ROW EXECUTE FUNCTION motofinai.version_trigger('version', 'last_modified_at', 'expected', 'false');
INSERT INTO misuse VALUES (1);
SELECT show_error($$UPDATE misuse SET id = 1$$);
DROP TRIGGER wrong ON misuse;
CREATE TRIGGER wrong BEFORE UPDATE ON misuse FOR EACH ROW EXECUTE FUNCTION motofinai.version_trigger('version');
SELECT show_error($$UPDATE misuse SET id = 1$$);
DROP TRIGGER wrong ON misuse;
CREATE TRIGGER wrong BEFORE UPDATE ON misuse FOR EACH ROW EXECUTE FUNCTION motofinai.version_trigger('nope', 'last_modified_at', 'expected', 'false');
SELECT show_error($$UPDATE misuse SET id = 1$$);
DROP TRIGGER wrong ON misuse;
CREATE TRIGGER wrong BEFORE UPDATE ON misuse FOR EACH ROW EXECUTE FUNCTION motofinai.version_trigger('last_modified_at', 'version', 'expected', 'false');
SELECT show_error($$UPDATE misuse SET id = 1$$);
DROP TRIGGER wrong ON misuse;
CREATE TRIGGER wrong BEFORE UPDATE ON misuse FOR EACH STATEMENT EXECUTE FUNCTION motofinai.version_trigger('version', 'last_modified_at', 'expected', 'false');
SELECT show_error($$UPDATE misuse SET id = 1$$);
DROP TABLE misuse;
