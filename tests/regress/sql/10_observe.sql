-- Observe mode: versions kept exactly as when enforcing, but a stale or
-- (strict) blind write is counted and logged instead of rejected; the
-- conflict log with its attribution to statements.
SET compute_query_id = on;
-- A statement's query id, as EXPLAIN VERBOSE reports it.
CREATE FUNCTION qid(sql text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
    EXECUTE 'EXPLAIN (VERBOSE, FORMAT JSON) ' || sql INTO plan;
    RETURN (plan -> 0 ->> 'Query Identifier')::bigint;
END $$;
SELECT motofinai.conflict_stats_reset();
CREATE TABLE obs (id int PRIMARY KEY, note text);
INSERT INTO obs VALUES (1, 'a'), (2, 'b');
SELECT motofinai.enable_versioning('obs', mode => 'observe');
SELECT mode, trigger_arguments, trigger_matches FROM motofinai.versioned_tables WHERE table_name = 'obs'::regclass;

-- A stale write goes through, and the version moves on as when enforcing.
UPDATE obs SET note = 'first', version = 1 WHERE id = 1;
SET application_name = 'regress-observe';
UPDATE obs SET note = upper('second'), version = 1 WHERE id = 1;
RESET application_name;
SELECT id, note, version FROM obs ORDER BY id;
SELECT updates_checked, conflicts, observed_conflicts, strict_rejections, observed_strict_rejections
  FROM motofinai.conflict_stats WHERE table_name = 'obs'::regclass;
SELECT database = current_database() AS this_database, table_name, key, kind, mode, expected_version, found_version,
       application_name, user_name = current_user AS by_me, pid = pg_backend_pid() AS my_pid,
       query_id = qid($$UPDATE obs SET note = upper('second'), version = 1 WHERE id = 1$$) AS query_id_right,
       winner_query_id = qid($$UPDATE obs SET note = 'first', version = 1 WHERE id = 1$$) AS winner_right
  FROM motofinai.recent_conflicts;
SELECT id, modifications, conflicts, observed_conflicts FROM motofinai.hot_rows('obs') ORDER BY id;

-- Strict, observed: a blind write goes through, counted.
SELECT motofinai.enable_versioning('obs', strict => true, mode => 'observe');
UPDATE obs SET note = 'blind' WHERE id = 2;
SELECT id, note, version FROM obs WHERE id = 2;
SELECT observed_strict_rejections FROM motofinai.conflict_stats WHERE table_name = 'obs'::regclass;
SELECT kind, mode, key FROM motofinai.recent_conflicts ORDER BY at DESC LIMIT 1;

-- One call switches to enforcing: the same stale write is refused.
SELECT motofinai.set_versioning_mode('obs', 'enforce');
SELECT mode, strict, trigger_arguments, trigger_matches FROM motofinai.versioned_tables WHERE table_name = 'obs'::regclass;
SELECT split_part(show_error($$UPDATE obs SET note = upper('second'), version = 1 WHERE id = 1$$), E'\n', 1) AS error;
SELECT conflicts, observed_conflicts FROM motofinai.conflict_stats WHERE table_name = 'obs'::regclass;
SELECT mode, count(*) FROM motofinai.recent_conflicts GROUP BY mode ORDER BY mode;

-- Per statement: which statements cause the conflicts (no keys). A
-- statement is the one the client sent: the enforced conflict above counts
-- for the SELECT show_error(...) that ran the UPDATE.
SELECT table_name, query_id = qid($$UPDATE obs SET note = upper('second'), version = 1 WHERE id = 1$$) AS the_stale_update,
       conflicts, observed_conflicts
  FROM motofinai.conflicts_by_statement ORDER BY conflicts + observed_conflicts DESC, conflicts DESC;
SELECT attname FROM pg_attribute WHERE attrelid = 'motofinai.conflicts_by_statement'::regclass AND attnum > 0 ORDER BY attnum;

-- Keys are data: a role that may not read the table sees none.
CREATE ROLE regress_mfc_watcher;
GRANT USAGE ON SCHEMA motofinai TO regress_mfc_watcher;
SET ROLE regress_mfc_watcher;
SELECT count(*) AS entries, count(key) AS keys FROM motofinai.recent_conflicts;
SELECT count(*) AS statements FROM motofinai.conflicts_by_statement;
RESET ROLE;
GRANT SELECT ON obs TO regress_mfc_watcher;
SET ROLE regress_mfc_watcher;
SELECT count(*) AS entries, count(key) AS keys FROM motofinai.recent_conflicts;
RESET ROLE;
DROP OWNED BY regress_mfc_watcher;
DROP ROLE regress_mfc_watcher;

-- Bad input.
SELECT split_part(show_error($$SELECT motofinai.set_versioning_mode('obs', 'watch')$$), E'\n', 1) AS error;
SELECT split_part(show_error($$SELECT motofinai.set_versioning_mode('obs', NULL)$$), E'\n', 1) AS error;
SELECT split_part(show_error($$SELECT motofinai.set_versioning_mode(NULL, 'observe')$$), E'\n', 1) AS error;
CREATE TABLE unversioned_obs (id int PRIMARY KEY);
SELECT split_part(show_error($$SELECT motofinai.set_versioning_mode('unversioned_obs', 'observe')$$), E'\n', 1) AS error;
SELECT split_part(show_error($$SELECT motofinai.enable_versioning('unversioned_obs', mode => 'loose')$$), E'\n', 1) AS error;

-- Reset empties the log and the statements of this database.
SELECT motofinai.conflict_stats_reset();
SELECT count(*) AS log, (SELECT count(*) FROM motofinai.conflicts_by_statement) AS statements FROM motofinai.recent_conflicts;
DROP TABLE obs, unversioned_obs;
DROP FUNCTION qid(text);
RESET compute_query_id;
