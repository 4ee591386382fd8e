-- Without shared_preload_libraries there is no shared memory for statistics:
-- the view says so, and everything else works.
CREATE EXTENSION motofinai_consistency;
SELECT motofinai.conflict_stats_enabled();
SELECT * FROM motofinai.conflict_stats;
SELECT motofinai.conflict_stats_reset();
CREATE TABLE t (id int PRIMARY KEY, v int);
INSERT INTO t VALUES (1, 0);
SELECT motofinai.enable_versioning('t', create_index => false);
UPDATE t SET v = 1, version = 1 WHERE id = 1;
\set VERBOSITY terse
UPDATE t SET v = 2, version = 1 WHERE id = 1;
\set VERBOSITY default
SELECT v, version FROM t;
SELECT * FROM motofinai.conflict_stats;
-- Observe mode lets the stale write through; the log is empty (nothing to
-- record into), and hot rows say nothing.
SELECT motofinai.set_versioning_mode('t', 'observe');
UPDATE t SET v = 3, version = 1 WHERE id = 1;
SELECT v, version FROM t;
SELECT count(*) AS logged FROM motofinai.recent_conflicts;
SELECT count(*) AS statements FROM motofinai.conflicts_by_statement;
SELECT count(*) AS hot FROM motofinai.hot_rows('t');
