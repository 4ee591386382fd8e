//! Race-condition and lock monitoring: conflict statistics and hot rows in
//! shared memory ([`store`], [`hot_rows`]), the conflict log with its
//! attribution to statements ([`log`]), conflict-rate alerts ([`alerts`]),
//! and the SQL functions and views that read them (here). The
//! high-version, deadlock and lock-wait reports are SQL (sql/monitoring.sql).

pub mod alerts;
pub mod hot_rows;
pub mod log;
pub mod store;

use pgrx::prelude::*;

/// Free the slots of dropped tables of this database (called by the
/// extension's sql_drop event trigger; not granted to PUBLIC).
#[pg_extern(volatile, parallel_unsafe)]
fn conflict_stats_forget(tables: Vec<pg_sys::Oid>) {
    store::clear_slots(|s| tables.iter().any(|t| u32::from(*t) == s.relid));
}

/// Zero this database's statistics.
#[pg_extern(volatile, parallel_unsafe)]
fn conflict_stats_reset() {
    store::clear_slots(|_| true);
}

/// Whether statistics are being collected (the library is preloaded).
#[pg_extern(stable, parallel_safe)]
fn conflict_stats_enabled() -> bool {
    store::enabled()
}

/// Lock-timeout failures seen by the row helpers since the server started
/// (NULL when statistics are off).
#[pg_extern(volatile, parallel_restricted)]
pub fn lock_timeouts() -> Option<i64> {
    store::lock_timeouts().map(|n| n as i64)
}

/// Conflict statistics per table of this database (the view
/// `motofinai.conflict_stats` adds names and the statistics state).
#[pg_extern(volatile, parallel_restricted)]
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
fn conflict_stats_raw() -> TableIterator<
    'static,
    (
        name!(relid, pg_sys::Oid),
        name!(updates_checked, i64),
        name!(conflicts, i64),
        name!(strict_rejections, i64),
        name!(last_conflict_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(observed_conflicts, i64),
        name!(observed_strict_rejections, i64),
    ),
> {
    TableIterator::new(store::snapshot().into_iter().map(|s| {
        (
            pg_sys::Oid::from(s.relid),
            s.checked as i64,
            s.conflicts as i64,
            s.strict_rejections as i64,
            crate::pg::backend::timestamptz(s.last_conflict),
            s.observed_conflicts as i64,
            s.observed_strict_rejections as i64,
        )
    }))
}

extension_sql!(
    r#"
CREATE VIEW motofinai.conflict_stats AS
SELECT s.relid::regclass AS table_name,
       s.updates_checked, s.conflicts, s.strict_rejections, s.last_conflict_at,
       'on'::text AS statistics,
       s.observed_conflicts, s.observed_strict_rejections
  FROM motofinai.conflict_stats_raw() s
 WHERE motofinai.conflict_stats_enabled()
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL,
       'off: add motofinai_consistency to shared_preload_libraries and restart to collect conflict statistics',
       NULL, NULL
 WHERE NOT motofinai.conflict_stats_enabled();
COMMENT ON VIEW motofinai.conflict_stats IS
    'Optimistic-locking conflicts per versioned table, from shared memory (needs shared_preload_libraries)';
GRANT SELECT ON motofinai.conflict_stats TO PUBLIC;
-- Counts are public, like pg_stat_user_tables; wiping them is not.
REVOKE EXECUTE ON FUNCTION motofinai.conflict_stats_reset(), motofinai.conflict_stats_forget(oid[]) FROM PUBLIC;

-- The conflict log: keys only for roles that may read the table (the raw
-- function checks); the table's mode now, from the registration.
CREATE VIEW motofinai.recent_conflicts AS
SELECT c.at, pg_catalog.current_database() AS database, c.relid::regclass AS table_name, c.key,
       c.kind, c.mode, c.expected_version, c.found_version, c.application_name,
       pg_catalog.pg_get_userbyid(c.userid) AS user_name, c.pid, c.query_id, c.winner_query_id
  FROM motofinai.recent_conflicts_raw() c;
COMMENT ON VIEW motofinai.recent_conflicts IS
    'The last conflicts and observed would-be conflicts (motofinai.conflict_log_size), newest first';
GRANT SELECT ON motofinai.recent_conflicts TO PUBLIC;

-- The text of a statement, from pg_stat_statements when it is installed
-- (NULL otherwise, or when the role may not see it).
CREATE FUNCTION motofinai.statement_text(query_id bigint) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    nsp name := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                  WHERE e.extname = 'pg_stat_statements');
    q text;
BEGIN
    IF nsp IS NULL OR query_id IS NULL OR query_id = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT query FROM %I.pg_stat_statements WHERE queryid = $1 LIMIT 1', nsp) INTO q USING query_id;
    RETURN q;
EXCEPTION WHEN object_not_in_prerequisite_state OR insufficient_privilege THEN
    RETURN NULL;   -- pg_stat_statements not preloaded, or not readable
END $$;

-- "These statements cause our conflicts": per statement and table, no keys.
CREATE VIEW motofinai.conflicts_by_statement AS
SELECT s.relid::regclass AS table_name, s.query_id, s.conflicts, s.observed_conflicts, s.last_conflict_at,
       motofinai.statement_text(s.query_id) AS query
  FROM motofinai.conflicts_by_statement_raw() s
 ORDER BY s.conflicts + s.observed_conflicts DESC, s.last_conflict_at DESC;
COMMENT ON VIEW motofinai.conflicts_by_statement IS
    'Conflicts and observed would-be conflicts per statement (query id) and table; reset with conflict_stats_reset()';
GRANT SELECT ON motofinai.conflicts_by_statement TO PUBLIC;
"#,
    name = "conflict_stats_view",
    requires = [
        conflict_stats_raw,
        conflict_stats_enabled,
        conflict_stats_reset,
        conflict_stats_forget,
        log::recent_conflicts_raw,
        log::conflicts_by_statement_raw
    ],
);
