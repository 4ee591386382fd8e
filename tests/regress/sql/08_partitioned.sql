-- Versioning on partitioned tables: enable_versioning on the parent puts the
-- trigger on the parent, PostgreSQL clones it to every partition (also those
-- created or attached later), rows moving between partitions keep the
-- optimistic-lock rules, and the row helpers address the parent.
-- Statistics count a partitioned table under its root; a partition versioned
-- on its own must be unversioned before its parent can be versioned.

-- A ledger partitioned by region, with a composite key.
CREATE TABLE part_ledger (id bigint NOT NULL, region text NOT NULL, amount numeric(12,2) NOT NULL,
                          PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE part_ledger_north PARTITION OF part_ledger FOR VALUES IN ('north');
CREATE TABLE part_ledger_south PARTITION OF part_ledger FOR VALUES IN ('south');
INSERT INTO part_ledger VALUES (1, 'north', 10), (2, 'south', 20);
SELECT motofinai.enable_versioning('part_ledger');
SELECT table_name, protocol, strict, trigger_present, trigger_enabled
  FROM motofinai.versioned_tables WHERE table_name::text LIKE 'part\_%';
SELECT tgrelid::regclass AS relation, tgname, tgparentid <> 0 AS cloned_from_parent
  FROM pg_trigger WHERE tgname = 'motofinai_versioning' AND tgrelid::regclass::text LIKE 'part\_ledger%' ORDER BY 1;
-- The columns are on the parent and every partition; existing rows got version 1.
SELECT tableoid::regclass AS partition, id, region, amount, version FROM part_ledger ORDER BY id;

-- An UPDATE in place bumps the version; a stale one is rejected (the error names the partition).
UPDATE part_ledger SET amount = 11 WHERE id = 1 RETURNING tableoid::regclass AS partition, id, version,
       last_modified_at = now() AS stamped;
SELECT show_error($$UPDATE part_ledger SET amount = 12, version = 1 WHERE id = 1$$);
-- Moving a row to another partition: the stated version is checked, the moved row is bumped...
UPDATE part_ledger SET region = 'south', version = 2 WHERE id = 1 RETURNING tableoid::regclass AS partition, id, region, version;
-- ... and moving it back with the version read before the move is stale.
SELECT show_error($$UPDATE part_ledger SET region = 'north', version = 2 WHERE id = 1$$);
UPDATE part_ledger SET region = 'north' WHERE id = 1 RETURNING tableoid::regclass AS partition, id, region, version;
SELECT tableoid::regclass AS partition, id, region, amount, version FROM part_ledger ORDER BY id;

-- Partitions created or attached after enabling are covered, whatever their column order.
CREATE TABLE part_ledger_east PARTITION OF part_ledger FOR VALUES IN ('east');
CREATE TABLE part_ledger_west (dropped int, last_modified_at timestamptz NOT NULL DEFAULT now(),
                               version integer NOT NULL DEFAULT 1, amount numeric(12,2) NOT NULL,
                               region text NOT NULL, id bigint NOT NULL);
ALTER TABLE part_ledger_west DROP COLUMN dropped;
INSERT INTO part_ledger_west (id, region, amount) VALUES (3, 'west', 30);
ALTER TABLE part_ledger ATTACH PARTITION part_ledger_west FOR VALUES IN ('west');
SELECT tgrelid::regclass AS relation, tgparentid <> 0 AS cloned_from_parent
  FROM pg_trigger WHERE tgname = 'motofinai_versioning' AND tgrelid::regclass::text LIKE 'part\_ledger%' ORDER BY 1;
INSERT INTO part_ledger VALUES (4, 'east', 40) RETURNING tableoid::regclass AS partition, id, version;
SELECT show_error($$UPDATE part_ledger SET amount = 41, version = 7 WHERE id = 4$$);
UPDATE part_ledger SET amount = 31, version = 1 WHERE id = 3 RETURNING tableoid::regclass AS partition, id, version;
SELECT show_error($$UPDATE part_ledger SET amount = 32, version = 1 WHERE id = 3$$);
UPDATE part_ledger SET region = 'east', version = 2 WHERE id = 3 RETURNING tableoid::regclass AS partition, id, region, version;
UPDATE part_ledger SET region = 'west', version = 3 WHERE id = 3 RETURNING tableoid::regclass AS partition, id, region, version;
-- A multi-row UPDATE across partitions bumps each row once.
UPDATE part_ledger SET amount = amount + 1;
SELECT tableoid::regclass AS partition, id, region, amount, version FROM part_ledger ORDER BY id;

-- The trigger belongs to the parent: a partition cannot be versioned or unversioned on its own.
SELECT show_error($$SELECT motofinai.enable_versioning('part_ledger_north')$$);
SELECT show_error($$SELECT motofinai.disable_versioning('part_ledger_north')$$);
-- A detached partition is an ordinary table again, no longer versioned.
ALTER TABLE part_ledger DETACH PARTITION part_ledger_east;
SELECT count(*) AS triggers_on_detached FROM pg_trigger WHERE tgrelid = 'part_ledger_east'::regclass;
UPDATE part_ledger_east SET amount = 0, version = 99 RETURNING id, version;
-- The row helpers need a single integer key.
SELECT show_error($$SELECT motofinai.get_for_update('part_ledger', 1)$$);

-- Accounts partitioned by id range: the row helpers and the increment protocol, strict.
CREATE TABLE part_acct (id bigint PRIMARY KEY, name text NOT NULL, balance numeric NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE part_acct_low PARTITION OF part_acct FOR VALUES FROM (1) TO (100);
CREATE TABLE part_acct_high PARTITION OF part_acct FOR VALUES FROM (100) TO (1000);
INSERT INTO part_acct VALUES (1, 'one', 1), (150, 'one fifty', 2);
SELECT motofinai.enable_versioning('part_acct', protocol => 'increment', strict => true);
SELECT motofinai.get_for_update('part_acct', 150, 1) - 'last_modified_at' AS row;
SELECT show_error($$SELECT motofinai.get_for_update('part_acct', 150, 2)$$);
SELECT motofinai.safe_update_with_version('part_acct', 150, 1, '{"balance": 5}') - 'last_modified_at' AS row;
SELECT show_error($$SELECT motofinai.safe_update_with_version('part_acct', 150, 1, '{"balance": 6}')$$);
SELECT show_error($$SELECT motofinai.safe_update_with_version('part_acct', 150, 2, '{"id": 50}')$$);
-- Strict: an UPDATE must state the version (read + 1 under the increment protocol), also when moving the row.
SELECT show_error($$UPDATE part_acct SET id = 50 WHERE id = 150$$);
SELECT show_error($$UPDATE part_acct SET id = 50, version = 2 WHERE id = 150$$);
UPDATE part_acct SET id = 50, version = 3 WHERE id = 150 RETURNING tableoid::regclass AS partition, id, version;
-- The helpers find the moved row through the parent.
SELECT motofinai.get_for_update('part_acct', 50, 3) ->> 'name' AS moved_row;
SELECT show_error($$SELECT motofinai.safe_delete_with_version('part_acct', 50, 2)$$);
SELECT motofinai.safe_delete_with_version('part_acct', 50, 3) AS deleted;
SELECT motofinai.safe_delete_with_version('part_acct', 50, 3) AS deleted_again;
SELECT show_error($$SELECT motofinai.safe_update_with_version('part_acct', 50, 3, '{"balance": 7}')$$);
SELECT tableoid::regclass AS partition, id, name, balance, version FROM part_acct ORDER BY id;

-- Partitioned by the version column itself: each bump moves the row, the rules still hold.
CREATE TABLE part_byver (id int NOT NULL, version integer NOT NULL DEFAULT 1, v int,
                         PRIMARY KEY (id, version)) PARTITION BY RANGE (version);
CREATE TABLE part_byver_1 PARTITION OF part_byver FOR VALUES FROM (1) TO (2);
CREATE TABLE part_byver_2 PARTITION OF part_byver FOR VALUES FROM (2) TO (100);
INSERT INTO part_byver VALUES (1, 1, 0);
SELECT motofinai.enable_versioning('part_byver', create_index => false);
UPDATE part_byver SET v = 1, version = 1 RETURNING tableoid::regclass AS partition, id, version, v;
SELECT show_error($$UPDATE part_byver SET v = 2, version = 1$$);

-- disable_versioning on the parent removes the trigger from every partition; columns and data stay.
SELECT motofinai.disable_versioning('part_ledger');
SELECT count(*) AS triggers_left FROM pg_trigger
 WHERE tgname = 'motofinai_versioning' AND tgrelid::regclass::text LIKE 'part\_ledger%';
UPDATE part_ledger SET amount = 0, version = 1 WHERE id = 1 RETURNING id, version;
DROP TABLE part_ledger, part_ledger_east, part_acct, part_byver;
SELECT count(*) AS registrations_left FROM motofinai.versioning_config WHERE tbl::text LIKE 'part\_%';

-- Statistics count a partitioned table under its root, as users see it.
CREATE TABLE part_stats (id bigint PRIMARY KEY, v int) PARTITION BY RANGE (id);
CREATE TABLE part_stats_low PARTITION OF part_stats FOR VALUES FROM (1) TO (100);
INSERT INTO part_stats VALUES (1, 0);
SELECT motofinai.enable_versioning('part_stats', create_index => false);
UPDATE part_stats SET v = 1;
SELECT show_error($$UPDATE part_stats SET v = 2, version = 1$$) IS NOT NULL AS conflict;
SELECT table_name, updates_checked, conflicts FROM motofinai.conflict_stats
 WHERE table_name::text LIKE 'part_stats%';
SELECT * FROM motofinai.hot_rows('part_stats');
-- A partition versioned on its own blocks versioning its parent (whose
-- trigger would silently replace the partition's options) until disabled.
CREATE TABLE part_first (id bigint PRIMARY KEY, v int, version integer NOT NULL DEFAULT 1,
                         last_modified_at timestamptz NOT NULL DEFAULT now()) PARTITION BY RANGE (id);
CREATE TABLE part_first_1 PARTITION OF part_first FOR VALUES FROM (1) TO (100);
SELECT motofinai.enable_versioning('part_first_1', strict => true, create_index => false);
SELECT show_error($$SELECT motofinai.enable_versioning('part_first')$$);
SELECT motofinai.disable_versioning('part_first_1');
SELECT motofinai.enable_versioning('part_first', create_index => false);
SELECT table_name, strict FROM motofinai.versioned_tables WHERE table_name::text LIKE 'part_first%';
DROP TABLE part_stats, part_first;
