//! Backend-local state. A PostgreSQL backend runs one thread and calls us
//! re-entrantly only through the relcache callback, which touches nothing a
//! caller holds, so a plain cell is enough. Statics are never dropped, so
//! nothing here is torn down after PostgreSQL has shut its memory down.

use std::cell::UnsafeCell;

pub struct BackendLocal<T>(UnsafeCell<Option<T>>);

// SAFETY: only the backend's single thread ever touches it.
unsafe impl<T> Sync for BackendLocal<T> {}

impl<T> BackendLocal<T> {
    pub const fn new() -> Self {
        BackendLocal(UnsafeCell::new(None))
    }

    /// The value, created on first use.
    #[allow(clippy::mut_from_ref)]
    pub fn get(&self, init: impl FnOnce() -> T) -> &mut T {
        // SAFETY: single-threaded, and no caller keeps the reference across
        // a call that could reach this cell again.
        unsafe { (*self.0.get()).get_or_insert_with(init) }
    }
}

/// What a row trigger resolved once for one trigger (by trigger OID), kept
/// for the backend and dropped when its table's relcache entry is
/// invalidated (ALTER TABLE, CREATE OR REPLACE TRIGGER, ...). A handful of
/// tables carry our triggers, so a short vector beats a hash map.
pub struct TriggerCache<T: Copy + 'static>(BackendLocal<Vec<(pgrx::pg_sys::Oid, pgrx::pg_sys::Oid, T)>>);

impl<T: Copy + 'static> TriggerCache<T> {
    pub const fn new() -> Self {
        TriggerCache(BackendLocal::new())
    }

    /// The entry for a trigger of a relation, resolving it on a miss.
    pub fn get<E>(
        &'static self,
        tgoid: pgrx::pg_sys::Oid,
        relid: pgrx::pg_sys::Oid,
        resolve: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let entries = self.0.get(Vec::new);
        if let Some((_, _, e)) = entries.iter().find(|(t, _, _)| *t == tgoid) {
            return Ok(*e);
        }
        let entry = resolve()?;
        self.0.get(Vec::new).push((tgoid, relid, entry));
        Ok(entry)
    }

    /// Forget a relation's entries (all of them for InvalidOid).
    pub fn invalidate(&'static self, relid: pgrx::pg_sys::Oid) {
        let entries = self.0.get(Vec::new);
        if relid == pgrx::pg_sys::InvalidOid {
            entries.clear();
        } else {
            entries.retain(|(_, r, _)| *r != relid);
        }
    }
}

/// Declare a C-language trigger function (`$finfo` is its `pg_finfo_`
/// record): the body runs under pgrx's guard and returns `Result<Datum>`;
/// an error is raised with its schema, table, column and constraint fields.
macro_rules! trigger_function {
    ($(#[$doc:meta])* $name:ident, $finfo:ident, |$fcinfo:ident| $body:expr) => {
        #[no_mangle]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        $(#[$doc])*
        ///
        /// # Safety
        /// Called by the fmgr with a valid `fcinfo`.
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name($fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
            let outcome: $crate::errors::Result<pgrx::pg_sys::Datum> = unsafe { pgrx::pgrx_extern_c_guard(|| $body) };
            $crate::errors::OrRaise::or_raise(outcome)
        }
    };
}
pub(crate) use trigger_function;
