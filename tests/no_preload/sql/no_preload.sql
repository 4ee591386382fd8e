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
