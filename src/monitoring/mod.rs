//! Race-condition and lock monitoring: conflict statistics and hot rows in
//! shared memory ([`store`], [`hot_rows`]), conflict-rate alerts
//! ([`alerts`]), and the SQL functions and view that read them (here). The
//! high-version, deadlock and lock-wait reports are SQL (sql/monitoring.sql).

pub mod alerts;
pub mod hot_rows;
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
fn conflict_stats_raw() -> TableIterator<
    'static,
    (
        name!(relid, pg_sys::Oid),
        name!(updates_checked, i64),
        name!(conflicts, i64),
        name!(strict_rejections, i64),
        name!(last_conflict_at, Option<pgrx::datum::TimestampWithTimeZone>),
    ),
> {
    TableIterator::new(store::snapshot().into_iter().map(|s| {
        (
            pg_sys::Oid::from(s.relid),
            s.checked as i64,
            s.conflicts as i64,
            s.strict_rejections as i64,
            (s.last_conflict != 0)
                // SAFETY: a TimestampTz by value.
                .then(|| unsafe {
                    pgrx::datum::TimestampWithTimeZone::from_datum(pg_sys::Datum::from(s.last_conflict), false)
                })
                .flatten(),
        )
    }))
}

extension_sql!(
    r#"
CREATE VIEW motofinai.conflict_stats AS
SELECT s.relid::regclass AS table_name,
       s.updates_checked, s.conflicts, s.strict_rejections, s.last_conflict_at,
       'on'::text AS statistics
  FROM motofinai.conflict_stats_raw() s
 WHERE motofinai.conflict_stats_enabled()
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL,
       'off: add motofinai_consistency to shared_preload_libraries and restart to collect conflict statistics'
 WHERE NOT motofinai.conflict_stats_enabled();
COMMENT ON VIEW motofinai.conflict_stats IS
    'Optimistic-locking conflicts per versioned table, from shared memory (needs shared_preload_libraries)';
GRANT SELECT ON motofinai.conflict_stats TO PUBLIC;
-- Counts are public, like pg_stat_user_tables; wiping them is not.
REVOKE EXECUTE ON FUNCTION motofinai.conflict_stats_reset(), motofinai.conflict_stats_forget(oid[]) FROM PUBLIC;
"#,
    name = "conflict_stats_view",
    requires = [conflict_stats_raw, conflict_stats_enabled, conflict_stats_reset, conflict_stats_forget],
);
