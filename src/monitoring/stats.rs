//! Conflict statistics in shared memory, the pg_stat_statements way: they
//! need `shared_preload_libraries`, survive the rollback a conflict causes
//! (a table insert would not), and are read through a view.
//!
//! One slot per versioned table (database and table OID), up to `SLOTS`;
//! the versioning trigger counts into it under a short exclusive LWLock, a
//! batch of rows at a time.
//! Each slot also keeps the table's hot rows: per 5-minute bucket over the
//! last hour, a Space-Saving summary of the rows updated most often (exact
//! while a bucket sees no more distinct rows than it has entries; never
//! under-counting), so "modifications in the last hour" is measured.

use crate::errors::OrRaise;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};

const SLOTS: usize = 64;
/// Entries per bucket: the most `motofinai.hot_rows` may use.
pub const MAX_HOT_ROWS: usize = 16;
const BUCKETS: usize = 12;
const BUCKET_SECONDS: i64 = 300;

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct HotEntry {
    key: i64,
    count: u32,
    /// Space-Saving's over-count bound for this entry.
    error: u32,
}

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Bucket {
    /// Which 5-minute period (Unix time / 300) the bucket holds.
    epoch: i64,
    used: u32,
    entries: [HotEntry; MAX_HOT_ROWS],
}

impl Bucket {
    /// Space-Saving: count a known key, else take a free entry, else replace
    /// the least counted one, inheriting its count as the error bound.
    fn add(&mut self, key: i64, capacity: usize) {
        let used = self.used as usize;
        if let Some(e) = self.entries[..used].iter_mut().find(|e| e.key == key) {
            e.count += 1;
        } else if used < capacity {
            self.entries[used] = HotEntry { key, count: 1, error: 0 };
            self.used += 1;
        } else if let Some(min) = self.entries[..used].iter_mut().min_by_key(|e| e.count) {
            *min = HotEntry { key, count: min.count + 1, error: min.count };
        }
    }
}

/// (minute number, conflicts in it) for each minute of the last hour.
#[derive(Clone, Copy)]
#[repr(C)]
struct Minutes([(i64, u32); 60]);

impl Default for Minutes {
    fn default() -> Self {
        Minutes([(0, 0); 60])
    }
}

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
    hot: [Bucket; BUCKETS],
    /// Conflicts per minute over the last hour.
    conflict_minutes: Minutes,
    /// A conflict-rate alert waiting to be sent: the count and window it
    /// reports, and the backend that has queued it (0: nobody yet).
    alert_pending: bool,
    alert_conflicts: u32,
    alert_window: u32,
    alert_claimed_by: i32,
    /// The minute of the last alert sent: one alert per window.
    alerted_minute: i64,
    /// Unix time of the last count: when every slot is taken, the one idle
    /// longest (say, of a dropped database's table) is given up.
    last_used: i64,
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Slots {
    tables: [Slot; SLOTS],
    /// Lock-timeout (55P03) failures seen by the row helpers, all databases.
    lock_timeouts: u64,
    /// How many slots have an alert pending (a cheap test for the hot path).
    pending: u32,
}

impl Default for Slots {
    fn default() -> Self {
        Slots { tables: [Slot::default(); SLOTS], lock_timeouts: 0, pending: 0 }
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
        unsafe { pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut()) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE) {
        at_xact_end(event == XACT_EVENT_COMMIT);
    }
}

/// What the versioning trigger saw for one UPDATE.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Conflict,
    StrictRejection,
}

fn unix_seconds() -> i64 {
    // TimestampTz counts microseconds from 2000-01-01.
    (unsafe { pg_sys::GetCurrentTimestamp() }) / 1_000_000 + 946_684_800
}

/// Passed updates this backend has counted but not yet added to shared
/// memory, as (table, row key). The first of each transaction goes in at
/// once, so the trigger learns whether an alert waits to be sent; the rest a
/// batch at a time, so a bulk UPDATE takes the lock once per `BATCH` rows.
/// Transaction end and every reader of the statistics flush the rest.
#[derive(Default)]
struct Buffer {
    events: Vec<(u32, Option<i64>)>,
    in_xact: bool,
}

static BUFFER: crate::backend::BackendLocal<Buffer> = crate::backend::BackendLocal::new();
const BATCH: usize = 256;

/// Count one checked UPDATE of a table, and (when it passed) of its row
/// `key`. True when some conflict-rate alert is waiting to be sent.
pub fn record(relid: pg_sys::Oid, outcome: Outcome, key: Option<i64>) -> bool {
    if !enabled() {
        return false;
    }
    let relid = u32::from(relid);
    let buffer = BUFFER.get(Buffer::default);
    if outcome == Outcome::Passed && buffer.in_xact && buffer.events.len() < BATCH {
        buffer.events.push((relid, key));
        return false;
    }
    buffer.in_xact = true;
    add(buffer, Some((relid, outcome, key)))
}

/// Add this backend's buffered counts to shared memory.
fn flush() {
    let buffer = BUFFER.get(Buffer::default);
    if enabled() && !buffer.events.is_empty() {
        add(buffer, None);
    }
}

/// Under one lock: the buffered passed updates, then `last`. Returns
/// whether a conflict-rate alert is pending.
fn add(buffer: &mut Buffer, last: Option<(u32, Outcome, Option<i64>)>) -> bool {
    let dbid = u32::from(unsafe { pg_sys::MyDatabaseId });
    let now = unix_seconds();
    let mut slots = STATS.exclusive();
    // A batch is mostly one table: find its slot once per run of it.
    let mut current: Option<(u32, usize)> = None;
    let events = buffer.events.drain(..).map(|(relid, key)| (relid, Outcome::Passed, key));
    for (relid, outcome, key) in events.chain(last) {
        let i = match current {
            Some((r, i)) if r == relid => i,
            _ => slots.slot(dbid, relid, now),
        };
        current = Some((relid, i));
        slots.count(i, now, outcome, key);
    }
    slots.pending > 0
}

impl Slots {
    /// The slot of a table, taking a free one, or else the one idle longest.
    fn slot(&mut self, dbid: u32, relid: u32, now: i64) -> usize {
        if let Some(i) = self.tables.iter().position(|s| s.relid == relid && s.dbid == dbid) {
            return i;
        }
        let i = self.tables.iter().position(|s| s.relid == 0).unwrap_or_else(|| {
            (0..SLOTS).min_by_key(|&i| self.tables[i].last_used).expect("SLOTS > 0")
        });
        self.clear(i);
        self.tables[i] = Slot { dbid, relid, last_used: now, ..Slot::default() };
        i
    }

    fn count(&mut self, i: usize, now: i64, outcome: Outcome, key: Option<i64>) {
        let slot = &mut self.tables[i];
        slot.last_used = now;
        slot.checked += 1;
        match outcome {
            Outcome::Passed => {
                if let Some(key) = key {
                    let epoch = now / BUCKET_SECONDS;
                    let bucket = &mut slot.hot[(epoch as usize) % BUCKETS];
                    if bucket.epoch != epoch {
                        *bucket = Bucket { epoch, ..Bucket::default() };
                    }
                    bucket.add(key, HOT_ROWS.get().clamp(1, MAX_HOT_ROWS as i32) as usize);
                }
            }
            Outcome::Conflict => {
                slot.conflicts += 1;
                slot.last_conflict = unsafe { pg_sys::GetCurrentTimestamp() };
                let minute = now / 60;
                let bucket = &mut slot.conflict_minutes.0[(minute as usize) % 60];
                if bucket.0 != minute {
                    *bucket = (minute, 0);
                }
                bucket.1 += 1;
                let window = CONFLICT_ALERT_WINDOW.get().clamp(1, 60) as i64;
                let recent: u32 =
                    slot.conflict_minutes.0.iter().filter(|(m, _)| *m > minute - window).map(|(_, n)| n).sum();
                if recent as i64 >= CONFLICT_ALERT_THRESHOLD.get() as i64 && minute - slot.alerted_minute >= window {
                    slot.alert_pending = true;
                    slot.alert_conflicts = recent;
                    slot.alert_window = window as u32;
                    self.pending += 1;
                }
            }
            Outcome::StrictRejection => slot.strict_rejections += 1,
        }
    }

    /// Empty a slot, withdrawing its pending alert.
    fn clear(&mut self, i: usize) {
        if self.tables[i].alert_pending {
            self.pending = self.pending.saturating_sub(1);
        }
        self.tables[i] = Slot::default();
    }
}

/// Free the slots of dropped tables of this database (called by the
/// extension's sql_drop event trigger; not granted to PUBLIC).
#[pg_extern(volatile, parallel_unsafe)]
fn conflict_stats_forget(tables: Vec<pg_sys::Oid>) {
    clear_slots(|s| tables.iter().any(|t| u32::from(*t) == s.relid));
}

/// Empty this database's slots that match.
fn clear_slots(matches: impl Fn(&Slot) -> bool) {
    if !enabled() {
        return;
    }
    flush();
    let dbid = u32::from(unsafe { pg_sys::MyDatabaseId });
    let mut slots = STATS.exclusive();
    for i in 0..SLOTS {
        if slots.tables[i].dbid == dbid && matches(&slots.tables[i]) {
            slots.clear(i);
        }
    }
}

/// Alerts this backend has queued in its transaction: (slot, relid).
static QUEUED: crate::backend::BackendLocal<Vec<(usize, u32)>> = crate::backend::BackendLocal::new();

/// Queue this database's pending conflict-rate alerts with pg_notify. They
/// go out if this transaction commits (and are marked sent then); if it
/// aborts, another transaction sends them.
pub fn send_pending_alerts() {
    if !enabled() || STATS.share().pending == 0 {
        return;
    }
    let dbid = u32::from(unsafe { pg_sys::MyDatabaseId });
    let me = unsafe { pg_sys::MyProcPid };
    let mut claimed = Vec::new();
    {
        let mut slots = STATS.exclusive();
        for (i, s) in slots.tables.iter_mut().enumerate() {
            if s.dbid == dbid && s.alert_pending && s.alert_claimed_by == 0 {
                s.alert_claimed_by = me;
                claimed.push((i, s.relid, s.alert_conflicts, s.alert_window));
            }
        }
    }
    for &(i, relid, conflicts, window) in &claimed {
        let table = crate::catalog::Table::open(Some(crate::catalog::Regclass(pg_sys::Oid::from(relid))), "table")
            .map_or_else(|_| relid.to_string(), |t| format!("{}.{}", t.schema, t.name));
        let payload = serde_json::json!({
            "alert": "conflict_rate", "table": table, "conflicts": conflicts,
            "window_minutes": window, "threshold": CONFLICT_ALERT_THRESHOLD.get(),
        })
        .to_string();
        unsafe {
            pgrx::direct_function_call::<()>(
                pg_sys::pg_notify,
                &["motofinai_alerts".into_datum(), payload.into_datum()],
            );
        }
        QUEUED.get(Vec::new).push((i, relid));
    }
}

/// At transaction end: what this backend queued is sent (commit) or
/// released for another transaction to send (abort).
fn at_xact_end(committed: bool) {
    flush();
    BUFFER.get(Buffer::default).in_xact = false;
    let queued = QUEUED.get(Vec::new);
    if queued.is_empty() || !enabled() {
        return;
    }
    let minute = unix_seconds() / 60;
    let mut guard = STATS.exclusive();
    let slots = &mut *guard;
    for (i, relid) in queued.drain(..) {
        let s = &mut slots.tables[i];
        if s.relid != relid {
            continue;
        }
        s.alert_claimed_by = 0;
        if committed && s.alert_pending {
            s.alert_pending = false;
            s.alerted_minute = minute;
            slots.pending = slots.pending.saturating_sub(1);
        }
    }
}

/// Send the pending conflict-rate alerts now (detect_* and run_check call it).
#[pg_extern(volatile, parallel_unsafe, name = "send_pending_alerts")]
pub fn send_pending_alerts_sql() {
    send_pending_alerts()
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
static HOT_ROWS: pgrx::guc::GucSetting<i32> = pgrx::guc::GucSetting::<i32>::new(MAX_HOT_ROWS as i32);
static CONFLICT_ALERT_THRESHOLD: pgrx::guc::GucSetting<i32> = pgrx::guc::GucSetting::<i32>::new(10);
static CONFLICT_ALERT_WINDOW: pgrx::guc::GucSetting<i32> = pgrx::guc::GucSetting::<i32>::new(5);

pub fn register_gucs() {
    use pgrx::guc::{GucContext, GucFlags, GucRegistry};
    let gucs: [(&CStr, &CStr, &CStr, &'static pgrx::guc::GucSetting<i32>, i32, i32, GucContext, GucFlags); 4] = [
        (
            c"motofinai.conflict_alert_threshold",
            c"Conflicts on one table within motofinai.conflict_alert_window that raise a conflict_rate alert.",
            c"Sent on channel motofinai_alerts by the next transaction that commits a versioned update.",
            &CONFLICT_ALERT_THRESHOLD, 1, i32::MAX, GucContext::Userset, GucFlags::default(),
        ),
        (
            c"motofinai.conflict_alert_window",
            c"The window, in minutes (1 to 60), over which conflicts are counted for the conflict_rate alert.",
            c"",
            &CONFLICT_ALERT_WINDOW, 1, 60, GucContext::Userset, GucFlags::UNIT_MIN,
        ),
        (
            c"motofinai.hot_rows",
            c"Rows tracked per versioned table and 5-minute bucket for the hot-row statistics.",
            c"At most 16; more distinct rows than this in a bucket make the counts upper bounds.",
            &HOT_ROWS, 1, MAX_HOT_ROWS as i32, GucContext::Sighup, GucFlags::default(),
        ),
        (
            c"motofinai.lock_wait_alert_ms",
            c"A lock wait on a versioned table this long, observed by detect_deadlocks(), is sent as an alert.",
            c"In milliseconds, on channel motofinai_alerts.",
            &LOCK_WAIT_ALERT_MS, 0, i32::MAX, GucContext::Userset, GucFlags::UNIT_MS,
        ),
    ];
    for (name, short, long, setting, min, max, context, flags) in gucs {
        GucRegistry::define_int_guc(name, short, long, setting, min, max, context, flags);
    }
}

/// The current database's slots.
pub fn snapshot() -> Vec<Slot> {
    if !enabled() {
        return Vec::new();
    }
    flush();
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

/// The rows of a table modified most often in the last `minutes` (rounded
/// up to whole 5-minute buckets, at most 60): measured counts, and the bound
/// by which a count may be too high (0: exact).
#[pg_extern(volatile, parallel_restricted)]
pub fn hot_rows(
    tbl: crate::catalog::Regclass,
    minutes: default!(i32, 60),
) -> TableIterator<'static, (name!(id, i64), name!(modifications, i64), name!(max_overcount, i64))> {
    // Row ids are data: only for those who may read the table.
    let allowed = unsafe { pg_sys::pg_class_aclcheck(tbl.0, pg_sys::GetUserId(), pg_sys::ACL_SELECT as pg_sys::AclMode) };
    if allowed != pg_sys::AclResult::ACLCHECK_OK {
        let table = crate::catalog::Table::open(Some(tbl), "tbl").or_raise();
        crate::errors::DbError::new(
            crate::errors::sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", table.name),
        )
        .table(&table.schema, &table.name)
        .raise();
    }
    let dbid = u32::from(unsafe { pg_sys::MyDatabaseId });
    let relid = u32::from(tbl.0);
    let now = unix_seconds() / BUCKET_SECONDS;
    let span = ((minutes.max(0) as i64 + BUCKET_SECONDS / 60 - 1) / (BUCKET_SECONDS / 60)).min(BUCKETS as i64);
    let mut counts: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    if enabled() {
        flush();
        let slots = STATS.share();
        if let Some(slot) = slots.tables.iter().find(|s| s.relid == relid && s.dbid == dbid) {
            for b in slot.hot.iter().filter(|b| b.epoch > now - span && b.epoch <= now) {
                for e in &b.entries[..b.used as usize] {
                    let c = counts.entry(e.key).or_default();
                    c.0 += e.count as i64;
                    c.1 += e.error as i64;
                }
            }
        }
    }
    let mut rows: Vec<(i64, i64, i64)> = counts.into_iter().map(|(k, (c, e))| (k, c, e)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    TableIterator::new(rows)
}

/// Whether statistics are being collected (the library is preloaded).
#[pg_extern(stable, parallel_safe)]
fn conflict_stats_enabled() -> bool {
    enabled()
}

/// Zero this database's statistics.
#[pg_extern(volatile, parallel_unsafe)]
fn conflict_stats_reset() {
    clear_slots(|_| true);
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
