//! The conflict statistics' shared memory, the pg_stat_statements way: it
//! needs `shared_preload_libraries`, survives the rollback a conflict causes
//! (a table insert would not), and holds counts, no policy.
//!
//! One slot per versioned table (database and table OID), up to `SLOTS`;
//! the versioning trigger counts into it under a short exclusive LWLock, a
//! batch of rows at a time. A slot also holds the table's hot rows
//! ([`super::hot_rows`]) and its conflict-rate alert state ([`super::alerts`]).

use super::alerts::{self, AlertState};
use super::hot_rows::{self, Buckets};
use super::log::{Event, Kind, Log, Writer};
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};

const SLOTS: usize = 64;

#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct Slot {
    dbid: u32,
    pub relid: u32,
    pub checked: u64,
    pub conflicts: u64,
    pub strict_rejections: u64,
    /// Would-be conflicts and strict rejections let through in observe mode.
    pub observed_conflicts: u64,
    pub observed_strict_rejections: u64,
    /// TimestampTz of the last conflict (real or observed), 0 for none.
    pub last_conflict: i64,
    pub hot: Buckets,
    alert: AlertState,
    observed_alert: AlertState,
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
    /// How many alerts are pending (a cheap test before a scan).
    pending: u32,
    log: Log,
}

impl Default for Slots {
    fn default() -> Self {
        Slots { tables: [Slot::default(); SLOTS], lock_timeouts: 0, pending: 0, log: Log::default() }
    }
}

// SAFETY: plain old data, no pointers.
unsafe impl PGRXSharedMemory for Slots {}

// SAFETY: a named LWLock-protected region, initialised by pg_shmem_init! at preload.
static STATS: PgLwLock<Slots> = unsafe { PgLwLock::new(c"motofinai_conflict_stats") };

/// Set at load when we are in shared_preload_libraries; without it there is
/// no shared memory to count into, and the view says statistics are off.
static ENABLED: AtomicBool = AtomicBool::new(false);

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Called from _PG_init.
pub fn init() {
    // SAFETY: a backend global, read in _PG_init.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(STATS);
        ENABLED.store(true, Ordering::Relaxed);
        // SAFETY: registered once, with a function that lives as long as the library.
        unsafe { pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut()) };
    }
}

/// # Safety
/// Called by PostgreSQL's transaction callback machinery with the arguments it documents.
#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    match event {
        // Before the commit, while NOTIFY can still be queued: this
        // transaction's versioned updates carry the alerts others' conflicts left.
        XACT_EVENT_PRE_COMMIT if BUFFER.with_borrow(|b| b.in_xact) && STATS.share().pending > 0 => {
            alerts::send_pending()
        }
        XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => {
            at_xact_end(event == XACT_EVENT_COMMIT)
        }
        _ => {}
    }
}

pub fn unix_seconds() -> i64 {
    // TimestampTz counts microseconds from 2000-01-01.
    // SAFETY: reads the clock; cannot fail.
    (unsafe { pg_sys::GetCurrentTimestamp() }) / 1_000_000 + 946_684_800
}

fn database() -> u32 {
    crate::pg::backend::database()
}

/// Passed updates this backend has counted but not yet added to shared
/// memory, as (table, row key, statement). The first of each transaction goes in at
/// once; the rest a batch at a time, so a bulk UPDATE takes the lock once
/// per `BATCH` rows. Transaction end and every reader of the statistics
/// flush the rest.
#[derive(Default)]
struct Buffer {
    events: Vec<(u32, Option<(i64, u64)>)>,
    in_xact: bool,
}

thread_local! {
    static BUFFER: RefCell<Buffer> = RefCell::new(Buffer::default());
    /// Set while this backend's updates are trials that will be rolled back
    /// (fix_consistency's dry run): they are not the application's writes.
    static PAUSED: Cell<bool> = const { Cell::new(false) };
}

/// Counting paused until the guard is dropped (an error unwinding through
/// the caller drops it too).
pub struct Paused(bool);

pub fn pause() -> Paused {
    Paused(PAUSED.replace(true))
}

impl Drop for Paused {
    fn drop(&mut self) {
        PAUSED.set(self.0);
    }
}
const BATCH: usize = 256;

/// Count one checked UPDATE of a table that passed, and of its row `key`
/// (with the statement that made it, for the conflict log's attribution).
pub fn record(relid: pg_sys::Oid, key: Option<i64>) {
    if !enabled() || PAUSED.get() {
        return;
    }
    let relid = u32::from(relid);
    let key = key.map(|k| (k, crate::pg::backend::query_id()));
    BUFFER.with_borrow_mut(|buffer| {
        if buffer.in_xact && buffer.events.len() < BATCH {
            buffer.events.push((relid, key));
            return;
        }
        buffer.in_xact = true;
        add(buffer, Some((relid, key)));
    })
}

/// Count and log one conflict (real or observed): one write to shared
/// memory, under the lock, with the buffered counts before it.
pub fn conflict(event: Event) {
    if !enabled() || PAUSED.get() {
        return;
    }
    let writer = Writer::current();
    // SAFETY: reads the clock; cannot fail.
    let at = unsafe { pg_sys::GetCurrentTimestamp() };
    BUFFER.with_borrow_mut(|buffer| {
        buffer.in_xact = true;
        let mut slots = add(buffer, None);
        let now = unix_seconds();
        let i = slots.slot(database(), event.relid, now);
        let winner = slots.count_conflict(i, &event, now, at);
        slots.log.append(&writer, &event, winner, at);
    })
}

/// Add this backend's buffered counts to shared memory.
fn flush() {
    if enabled() {
        BUFFER.with_borrow_mut(|buffer| {
            if !buffer.events.is_empty() {
                add(buffer, None);
            }
        })
    }
}

/// Under one lock: the buffered passed updates, then `last`; the lock is
/// handed back for more under it.
fn add(
    buffer: &mut Buffer,
    last: Option<(u32, Option<(i64, u64)>)>,
) -> pgrx::lwlock::PgLwLockExclusiveGuard<'static, Slots> {
    let dbid = database();
    let now = unix_seconds();
    let mut slots = STATS.exclusive();
    // A batch is mostly one table: find its slot once per run of it.
    let mut current: Option<(u32, usize)> = None;
    for (relid, key) in buffer.events.drain(..).chain(last) {
        let i = match current {
            Some((r, i)) if r == relid => i,
            _ => slots.slot(dbid, relid, now),
        };
        current = Some((relid, i));
        slots.count(i, now, key);
    }
    slots
}

impl Slots {
    /// The slot of a table, taking a free one, or else the one idle longest.
    fn slot(&mut self, dbid: u32, relid: u32, now: i64) -> usize {
        if let Some(i) = self.tables.iter().position(|s| s.relid == relid && s.dbid == dbid) {
            return i;
        }
        let free = self.tables.iter().position(|s| s.relid == 0);
        let i = free.unwrap_or_else(|| (0..SLOTS).min_by_key(|&i| self.tables[i].last_used).unwrap_or(0));
        self.clear(i);
        self.tables[i] = Slot { dbid, relid, last_used: now, ..Slot::default() };
        i
    }

    /// A passed update, and its row's modification.
    fn count(&mut self, i: usize, now: i64, key: Option<(i64, u64)>) {
        let slot = &mut self.tables[i];
        slot.last_used = now;
        slot.checked += 1;
        if let Some((key, query)) = key {
            hot_rows::count(&mut slot.hot, key, query, now);
        }
    }

    /// A conflict or strict rejection, real or observed; the query id of
    /// the statement that last modified the row, if known (0: not).
    fn count_conflict(&mut self, i: usize, e: &Event, now: i64, at: i64) -> u64 {
        let slot = &mut self.tables[i];
        slot.last_used = now;
        // A write let through is counted as checked when it passes on.
        slot.checked += u64::from(!e.observed);
        let counter = match (e.kind, e.observed) {
            (Kind::StaleVersion, false) => &mut slot.conflicts,
            (Kind::StaleVersion, true) => &mut slot.observed_conflicts,
            (Kind::NotStated, false) => &mut slot.strict_rejections,
            (Kind::NotStated, true) => &mut slot.observed_strict_rejections,
        };
        *counter += 1;
        if e.kind != Kind::StaleVersion {
            return 0;
        }
        slot.last_conflict = at;
        let alert = if e.observed { &mut slot.observed_alert } else { &mut slot.alert };
        if alert.conflict(now) {
            self.pending += 1;
        }
        e.key.map_or(0, |key| hot_rows::conflict(&mut slot.hot, key, e.observed, now))
    }

    /// Empty a slot, withdrawing its pending alerts.
    fn clear(&mut self, i: usize) {
        for pending in [self.tables[i].alert.is_pending(), self.tables[i].observed_alert.is_pending()] {
            if pending {
                self.alert_sent();
            }
        }
        self.tables[i] = Slot::default();
    }

    /// The alert state (real or observed conflicts) of slot `i` if it still
    /// holds table `relid`.
    pub fn alert_state(&mut self, i: usize, relid: u32, observed: bool) -> Option<&mut AlertState> {
        let slot = &mut self.tables[i];
        (slot.relid == relid).then_some(if observed { &mut slot.observed_alert } else { &mut slot.alert })
    }

    /// One pending alert fewer.
    pub fn alert_sent(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }
}

/// For each of this database's slots, `claim` its alert states (real, then
/// observed); the claimed ones as (slot, relid, observed, what `claim` returned).
pub fn claim_alerts<T>(mut claim: impl FnMut(&mut AlertState) -> Option<T>) -> Vec<(usize, u32, bool, T)> {
    if !enabled() || STATS.share().pending == 0 {
        return Vec::new();
    }
    let dbid = database();
    let mut slots = STATS.exclusive();
    let mut claimed = Vec::new();
    for (i, s) in slots.tables.iter_mut().enumerate().filter(|(_, s)| s.dbid == dbid) {
        for (observed, state) in [(false, &mut s.alert), (true, &mut s.observed_alert)] {
            if let Some(t) = claim(state) {
                claimed.push((i, s.relid, observed, t));
            }
        }
    }
    claimed
}

/// At transaction end: flush the counts, and settle the queued alerts.
fn at_xact_end(committed: bool) {
    flush();
    BUFFER.with_borrow_mut(|b| b.in_xact = false);
    if alerts::queued() {
        alerts::at_xact_end(&mut STATS.exclusive(), committed);
    }
}

/// Empty this database's slots that match.
pub fn clear_slots(matches: impl Fn(&Slot) -> bool) {
    if !enabled() {
        return;
    }
    flush();
    let dbid = database();
    let mut slots = STATS.exclusive();
    let mut cleared = Vec::new();
    for i in 0..SLOTS {
        if slots.tables[i].dbid == dbid && matches(&slots.tables[i]) {
            cleared.push(slots.tables[i].relid);
            slots.clear(i);
        }
    }
    slots.log.forget(dbid, |relid| cleared.contains(&relid));
}

/// The current database's slots.
pub fn snapshot() -> Vec<Slot> {
    if !enabled() {
        return Vec::new();
    }
    flush();
    let dbid = database();
    STATS.share().tables.iter().filter(|s| s.relid != 0 && s.dbid == dbid).copied().collect()
}

/// Run `f` on this database's slot of a table, if statistics are on and it has one.
pub fn with_slot(relid: pg_sys::Oid, f: impl FnOnce(&Slot)) {
    if !enabled() {
        return;
    }
    flush();
    let (dbid, relid) = (database(), u32::from(relid));
    if let Some(slot) = STATS.share().tables.iter().find(|s| s.relid == relid && s.dbid == dbid) {
        f(slot);
    }
}

/// Run `f` on the conflict log (None when statistics are off).
pub fn with_log<T>(f: impl FnOnce(&Log) -> T) -> Option<T> {
    if !enabled() {
        return None;
    }
    flush();
    Some(f(&STATS.share().log))
}

/// Count a row helper's lock-timeout failure.
pub fn record_lock_timeout() {
    if enabled() {
        STATS.exclusive().lock_timeouts += 1;
    }
}

/// Lock-timeout failures since the server started (None when statistics are off).
pub fn lock_timeouts() -> Option<u64> {
    enabled().then(|| STATS.share().lock_timeouts)
}
