//! Ids that row triggers note in a transaction, each with the
//! subtransaction that first noted it, so that what a rolled-back
//! subtransaction (a savepoint, an exception block, a repair that failed)
//! noted is forgotten. Enforcement and change tracking each keep one.

use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::thread::LocalKey;

#[derive(Default)]
pub struct Touched(BTreeMap<i64, pg_sys::SubTransactionId>);

pub type Set = RefCell<Touched>;

/// Every set the callbacks keep in step.
pub struct Sets(pub &'static [&'static LocalKey<Set>]);

static ALL: Sets = Sets(&[
    &crate::enforcement::TOUCHED,
    &crate::enforcement::TOUCHED_INSTALLMENTS,
    &crate::enforcement::CHANGED_INSTALLMENTS,
    &crate::tracking::NOTED_LOANS,
    &crate::tracking::NOTED_MOTORS,
    &crate::tracking::NOTED_USERS,
    &crate::tracking::NOTED_INSTALLMENTS,
    &crate::tracking::CHANGED_INSTALLMENTS,
]);

/// # Safety
/// Called by PostgreSQL's transaction callback machinery with the arguments it documents.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn at_xact_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    ALL.at_xact_end(event);
}

/// # Safety
/// Called by PostgreSQL's subtransaction callback machinery with the arguments it documents.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn at_subxact_end(
    event: pg_sys::SubXactEvent::Type,
    sub: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    ALL.at_subxact_end(event, sub, parent);
}

/// Called from _PG_init.
pub fn register_callbacks() {
    // SAFETY: called once, with functions that live as long as the library.
    unsafe {
        pg_sys::RegisterXactCallback(Some(at_xact_end), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(at_subxact_end), std::ptr::null_mut());
    }
}

impl Touched {
    /// Note ids in the current subtransaction (the first noting counts).
    pub fn note(&mut self, ids: impl IntoIterator<Item = i64>) {
        // SAFETY: row triggers run inside a transaction.
        let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
        for id in ids {
            self.0.entry(id).or_insert(sub);
        }
    }

    /// The ids, emptying the set.
    pub fn take(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.0).into_keys().collect()
    }

    /// The ids not in `known`'s, emptying both sets.
    pub fn take_but(&mut self, known: &mut Touched) -> Vec<i64> {
        let known = std::mem::take(&mut known.0);
        std::mem::take(&mut self.0).into_keys().filter(|id| !known.contains_key(id)).collect()
    }
}

impl Sets {
    /// At transaction end everything is forgotten.
    pub fn at_xact_end(&self, event: pg_sys::XactEvent::Type) {
        use pg_sys::XactEvent::*;
        if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE) {
            self.each(|t| t.0.clear());
        }
    }

    /// A subtransaction that aborts takes its ids with it; one that commits
    /// hands them to its parent.
    pub fn at_subxact_end(
        &self,
        event: pg_sys::SubXactEvent::Type,
        sub: pg_sys::SubTransactionId,
        parent: pg_sys::SubTransactionId,
    ) {
        use pg_sys::SubXactEvent::*;
        match event {
            SUBXACT_EVENT_ABORT_SUB => self.each(|t| t.0.retain(|_, s| *s != sub)),
            SUBXACT_EVENT_COMMIT_SUB => {
                self.each(|t| t.0.values_mut().filter(|s| **s == sub).for_each(|s| *s = parent))
            }
            _ => {}
        }
    }

    fn each(&self, f: impl Fn(&mut Touched)) {
        for set in self.0 {
            set.with_borrow_mut(&f);
        }
    }
}
