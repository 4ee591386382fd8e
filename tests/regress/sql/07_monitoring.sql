-- Conflict statistics in shared memory (this cluster preloads the library).
CREATE TABLE counted (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
INSERT INTO counted SELECT g FROM generate_series(1, 5) g;
SELECT motofinai.enable_versioning('counted', create_index => false);
SELECT motofinai.conflict_stats_enabled();
-- A scripted sequence: 5 blind updates, 2 stated ones, 2 conflicts, one update
-- rolled back, then 2 strict rejections.
UPDATE counted SET v = v + 1;
UPDATE counted SET v = 10, version = 2 WHERE id = 1;
UPDATE counted SET v = 10, version = 2 WHERE id = 2;
SELECT show_error($$UPDATE counted SET v = 11, version = 2 WHERE id = 1$$) IS NOT NULL AS conflict;
SELECT show_error($$UPDATE counted SET v = 11, version = 1 WHERE id IN (2, 3)$$) IS NOT NULL AS conflict;
BEGIN;
UPDATE counted SET v = 12, version = 2 WHERE id = 4;
ROLLBACK;
SELECT motofinai.enable_versioning('counted', strict => true, create_index => false);
SELECT show_error($$UPDATE counted SET v = 0$$) IS NOT NULL AS rejected;
SELECT show_error($$UPDATE counted SET v = 0 WHERE id = 5$$) IS NOT NULL AS rejected;
-- Conflicts (rolled back by their error) and the rolled-back update are
-- still counted: the counters live outside the transaction.
SELECT table_name, updates_checked, conflicts, strict_rejections, last_conflict_at IS NOT NULL AS has_last,
       statistics
  FROM motofinai.conflict_stats WHERE table_name = 'counted'::regclass;
SELECT motofinai.conflict_stats_reset();
SELECT count(*) FROM motofinai.conflict_stats WHERE table_name = 'counted'::regclass;
UPDATE counted SET v = 1, version = 2 WHERE id = 3;
SELECT updates_checked, conflicts FROM motofinai.conflict_stats WHERE table_name = 'counted'::regclass;
DROP TABLE counted;

-- detect_version_conflicts: the seed's format, with the table's statistics.
CREATE TABLE busy (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
INSERT INTO busy SELECT g FROM generate_series(1, 4) g;
SELECT motofinai.enable_versioning('busy');
UPDATE busy SET v = v + 1 WHERE id <= 3;
UPDATE busy SET v = v + 1 WHERE id <= 2;
UPDATE busy SET v = v + 1 WHERE id = 1;
SELECT show_error($$UPDATE busy SET v = 9, version = 1 WHERE id = 1$$) IS NOT NULL AS conflict;
SELECT d ->> 'table' AS "table", d -> 'time_window_hours' AS hours, d ? 'detected_at' AS has_detected_at,
       jsonb_path_query_array(d, '$.high_version_objects[*].id') AS ids,
       jsonb_path_query_array(d, '$.high_version_objects[*].version') AS versions,
       (d -> 'conflict_stats') - 'last_conflict_at' AS stats
  FROM motofinai.detect_version_conflicts('busy') d;
SELECT id, version FROM motofinai.version_conflicts('busy', 1);
SELECT jsonb_array_length(motofinai.detect_version_conflicts('busy', 0) -> 'high_version_objects') AS none_in_no_time;
CREATE TABLE unversioned (id int PRIMARY KEY);
SELECT show_error($$SELECT motofinai.detect_version_conflicts('unversioned')$$);
DROP TABLE unversioned;
SELECT show_error($$SELECT motofinai.detect_version_conflicts(NULL)$$);

-- detect_deadlocks: the deadlock count, lock waits on versioned tables (none now),
-- the row helpers' lock timeouts, and the highest versions.
SELECT jsonb_typeof(d -> 'deadlocks_total') AS deadlocks, d -> 'lock_waits' AS lock_waits,
       jsonb_typeof(d -> 'lock_timeouts') AS lock_timeouts,
       jsonb_path_query_array(d, '$.objects_with_high_versions[*].version') AS versions
  FROM motofinai.detect_deadlocks('busy') d;
DROP TABLE busy;

-- Hot rows: the rows updated most often in the last hour, counted by the trigger.
CREATE TABLE hot (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0);
INSERT INTO hot SELECT g FROM generate_series(1, 10) g;
SELECT motofinai.enable_versioning('hot', create_index => false);
UPDATE hot SET v = v + 1 WHERE id = 7;
UPDATE hot SET v = v + 1 WHERE id = 7;
UPDATE hot SET v = v + 1 WHERE id IN (7, 3);
UPDATE hot SET v = v + 1 WHERE id IN (7, 3);
UPDATE hot SET v = v + 1;
SELECT * FROM motofinai.hot_rows('hot') LIMIT 4;
SELECT count(*) AS rows_tracked, sum(modifications) AS modifications FROM motofinai.hot_rows('hot', 60);
SELECT count(*) AS in_no_time FROM motofinai.hot_rows('hot', 0);
-- A conflict is not a modification.
SELECT show_error($$UPDATE hot SET v = 0, version = 1 WHERE id = 7$$) IS NOT NULL AS conflict;
SELECT modifications FROM motofinai.hot_rows('hot') WHERE id = 7;
-- detect_version_conflicts reports each object's measured modifications.
SELECT jsonb_path_query_array(d, '$.high_version_objects[*] ? (@.id == "7" || @.id == "3") .modifications_in_window') AS measured
  FROM motofinai.detect_version_conflicts('hot') d;
DROP TABLE hot;

-- Statistics are public counts, but wiping them is for the owner, and hot
-- row ids only for those who may read the table.
CREATE ROLE regress_mfc_watcher;
GRANT USAGE ON SCHEMA motofinai TO regress_mfc_watcher;
CREATE TABLE secret (id int PRIMARY KEY, v int);
INSERT INTO secret VALUES (1, 0);
SELECT motofinai.enable_versioning('secret', create_index => false);
UPDATE secret SET v = 1;
SET ROLE regress_mfc_watcher;
SELECT show_error($$SELECT motofinai.conflict_stats_reset()$$);
SELECT show_error($$SELECT * FROM motofinai.hot_rows('secret')$$);
SELECT updates_checked FROM motofinai.conflict_stats WHERE table_name = 'secret'::regclass;
RESET ROLE;
SELECT * FROM motofinai.hot_rows('secret');
-- Dropping a versioned table frees its statistics slot.
SELECT 'secret'::regclass::oid AS secret_oid \gset
DROP TABLE secret;
SELECT count(*) AS slots_of_dropped_table FROM motofinai.conflict_stats_raw() WHERE relid = :secret_oid;
DROP OWNED BY regress_mfc_watcher;
DROP ROLE regress_mfc_watcher;
