//! Conflict-rate alerts: conflicts per minute per table, a pending alert
//! when a window's count reaches the threshold, and its delivery with
//! `pg_notify` on channel `motofinai_alerts`.
//!
//! The conflicting transactions roll back, so they cannot send it: the
//! next transaction that commits a versioned update sends it just before
//! its commit (XACT_EVENT_PRE_COMMIT), as do the readers (run_check,
//! detect_* and `send_pending_alerts()`). Never the row trigger itself.

use super::store::{self, Slots};
use crate::catalog::{Regclass, Table};
use crate::gucs::{CONFLICT_ALERT_THRESHOLD, CONFLICT_ALERT_WINDOW};
use pgrx::prelude::*;
use std::cell::RefCell;

/// A table's conflict-rate state, in its shared-memory slot.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct AlertState {
    /// (minute number, conflicts in it) for each minute of the last hour.
    minutes: [(i64, u32); 60],
    /// A conflict-rate alert waiting to be sent: the count and window it
    /// reports, and the backend that has queued it (0: nobody yet).
    pending: bool,
    conflicts: u32,
    window: u32,
    claimed_by: i32,
    /// The minute of the last alert sent: one alert per window.
    alerted_minute: i64,
}

impl Default for AlertState {
    fn default() -> Self {
        AlertState { minutes: [(0, 0); 60], pending: false, conflicts: 0, window: 0, claimed_by: 0, alerted_minute: 0 }
    }
}

impl AlertState {
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// Count a conflict at Unix time `now`; true when it makes an alert pending.
    pub fn conflict(&mut self, now: i64) -> bool {
        let minute = now / 60;
        let bucket = &mut self.minutes[(minute as usize) % 60];
        if bucket.0 != minute {
            *bucket = (minute, 0);
        }
        bucket.1 += 1;
        let window = CONFLICT_ALERT_WINDOW.get().clamp(1, 60) as i64;
        let recent: u32 = self.minutes.iter().filter(|(m, _)| *m > minute - window).map(|(_, n)| n).sum();
        let due = recent as i64 >= CONFLICT_ALERT_THRESHOLD.get() as i64 && minute - self.alerted_minute >= window;
        if due && !self.pending {
            self.pending = true;
            self.conflicts = recent;
            self.window = window as u32;
            return true;
        }
        if due {
            self.conflicts = recent;
        }
        false
    }
}

thread_local! {
    /// Alerts this backend has queued in its transaction: (slot, relid, observed).
    static QUEUED: RefCell<Vec<(usize, u32, bool)>> = const { RefCell::new(Vec::new()) };
}

/// Queue this database's pending conflict-rate alerts with pg_notify. They
/// go out if this transaction commits (and are marked sent then); if it
/// aborts, another transaction sends them.
pub fn send_pending() {
    // SAFETY: a backend global, read in its own thread.
    let me = unsafe { pg_sys::MyProcPid };
    let claimed = store::claim_alerts(|state| {
        if state.pending && state.claimed_by == 0 {
            state.claimed_by = me;
            Some((state.conflicts, state.window))
        } else {
            None
        }
    });
    for (i, relid, observed, (conflicts, window)) in claimed {
        let table = Table::open(Some(Regclass(pg_sys::Oid::from(relid))), "table")
            .map_or_else(|_| relid.to_string(), |t| format!("{}.{}", t.schema, t.name));
        let mut payload = serde_json::json!({
            "alert": "conflict_rate", "table": table, "conflicts": conflicts,
            "window_minutes": window, "threshold": CONFLICT_ALERT_THRESHOLD.get(),
        });
        if observed {
            // Would-be conflicts a table in observe mode let through.
            payload["mode"] = "observe".into();
        }
        let payload = payload.to_string();
        // SAFETY: pg_notify(text, text), called inside a transaction (a
        // function call or the pre-commit callback, before PreCommit_Notify).
        unsafe {
            pgrx::direct_function_call::<()>(
                pg_sys::pg_notify,
                &["motofinai_alerts".into_datum(), payload.into_datum()],
            );
        }
        QUEUED.with_borrow_mut(|q| q.push((i, relid, observed)));
    }
}

/// At transaction end: what this backend queued is sent (commit) or
/// released for another transaction to send (abort).
pub fn at_xact_end(slots: &mut Slots, committed: bool) {
    let minute = store::unix_seconds() / 60;
    for (i, relid, observed) in QUEUED.with_borrow_mut(std::mem::take) {
        let Some(state) = slots.alert_state(i, relid, observed) else { continue };
        state.claimed_by = 0;
        if committed && state.pending {
            state.pending = false;
            state.alerted_minute = minute;
            slots.alert_sent();
        }
    }
}

/// Whether this backend queued alerts in its transaction.
pub fn queued() -> bool {
    QUEUED.with_borrow(|q| !q.is_empty())
}

/// Send the pending conflict-rate alerts now (detect_* and run_check call it).
#[pg_extern(volatile, parallel_unsafe, name = "send_pending_alerts")]
pub fn send_pending_alerts_sql() {
    send_pending()
}
