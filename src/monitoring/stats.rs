//! Conflict statistics in shared memory, the pg_stat_statements way: they
//! need `shared_preload_libraries`, survive the rollback a conflict causes
//! (a table insert would not), and are read through a view.
//!
//! One slot per versioned table (database and table OID), up to `SLOTS`;
//! the versioning trigger counts into it under a short exclusive LWLock.

use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};
use std::sync::atomic::{AtomicBool, Ordering};

const SLOTS: usize = 256;

#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct Slot {
    dbid: u32,
    relid: u32,
    checked: u64,
    conflicts: u64,
    strict_rejections: u64,
    /// TimestampTz of the last conflict, 0 for none.
    last_conflict: i64,
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Slots {
    tables: [Slot; SLOTS],
    /// Lock-timeout (55P03) failures seen by the row helpers, all databases.
    lock_timeouts: u64,
}

impl Default for Slots {
    fn default() -> Self {
        Slots { tables: [Slot::default(); SLOTS], lock_timeouts: 0 }
    }
}

// SAFETY: plain old data, no pointers.
unsafe impl PGRXSharedMemory for Slots {}

static STATS: PgLwLock<Slots> = unsafe { PgLwLock::new(c"motofinai_conflict_stats") };

/// Set at load when we are in shared_preload_libraries; without it there is
/// no shared memory to count into, and the view says statistics are off.
static ENABLED: AtomicBool = AtomicBool::new(false);

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Called from _PG_init.
pub fn init() {
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(STATS);
        ENABLED.store(true, Ordering::Relaxed);
    }
}

/// What the versioning trigger saw for one UPDATE.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Conflict,
    StrictRejection,
}

/// Count one checked UPDATE of a table.
pub fn record(relid: pg_sys::Oid, outcome: Outcome) {
    if !enabled() {
        return;
    }
    let dbid = u32::from(unsafe { pg_sys::MyDatabaseId });
    let relid = u32::from(relid);
    let mut slots = STATS.exclusive();
    let slot = match slots.tables.iter().position(|s| s.relid == relid && s.dbid == dbid) {
        Some(i) => &mut slots.tables[i],
        None => match slots.tables.iter().position(|s| s.relid == 0) {
            Some(i) => {
                slots.tables[i] = Slot { dbid, relid, ..Slot::default() };
                &mut slots.tables[i]
            }
            None => return, // full: a table beyond SLOTS is not counted
        },
    };
    slot.checked += 1;
    match outcome {
        Outcome::Passed => {}
        Outcome::Conflict => {
            slot.conflicts += 1;
            slot.last_conflict = unsafe { pg_sys::GetCurrentTimestamp() };
        }
        Outcome::StrictRejection => slot.strict_rejections += 1,
    }
}

/// Count a row helper's lock-timeout failure.
pub fn record_lock_timeout() {
    if enabled() {
        STATS.exclusive().lock_timeouts += 1;
    }
}

/// Lock-timeout failures seen by the row helpers since the server started
/// (NULL when statistics are off).
#[pg_extern(volatile, parallel_restricted)]
pub fn lock_timeouts() -> Option<i64> {
    enabled().then(|| STATS.share().lock_timeouts as i64)
}

static LOCK_WAIT_ALERT_MS: pgrx::guc::GucSetting<i32> = pgrx::guc::GucSetting::<i32>::new(5000);

pub fn register_gucs() {
    pgrx::guc::GucRegistry::define_int_guc(
        c"motofinai.lock_wait_alert_ms",
        c"A lock wait on a versioned table this long, observed by detect_deadlocks(), is sent as an alert.",
        c"In milliseconds, on channel motofinai_alerts.",
        &LOCK_WAIT_ALERT_MS,
        0,
        i32::MAX,
        pgrx::guc::GucContext::Userset,
        pgrx::guc::GucFlags::UNIT_MS,
    );
}

/// The current database's slots.
pub fn snapshot() -> Vec<Slot> {
    if !enabled() {
        return Vec::new();
    }
    let dbid = u32::from(unsafe { pg_sys::MyDatabaseId });
    STATS.share().tables.iter().filter(|s| s.relid != 0 && s.dbid == dbid).copied().collect()
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
    TableIterator::new(snapshot().into_iter().map(|s| {
        (
            pg_sys::Oid::from(s.relid),
            s.checked as i64,
            s.conflicts as i64,
            s.strict_rejections as i64,
            (s.last_conflict != 0).then(|| unsafe { pgrx::datum::TimestampWithTimeZone::from_datum(pg_sys::Datum::from(s.last_conflict), false) }).flatten(),
        )
    }))
}

/// Whether statistics are being collected (the library is preloaded).
#[pg_extern(stable, parallel_safe)]
fn conflict_stats_enabled() -> bool {
    enabled()
}

/// Zero this database's statistics.
#[pg_extern(volatile, parallel_unsafe)]
fn conflict_stats_reset() {
    if !enabled() {
        return;
    }
    let dbid = u32::from(unsafe { pg_sys::MyDatabaseId });
    for s in STATS.exclusive().tables.iter_mut().filter(|s| s.dbid == dbid) {
        *s = Slot::default();
    }
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
"#,
    name = "conflict_stats_view",
    requires = [conflict_stats_raw, conflict_stats_enabled],
);
