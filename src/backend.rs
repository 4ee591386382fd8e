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
