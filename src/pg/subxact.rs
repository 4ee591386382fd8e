//! Internal subtransactions, as PL/pgSQL's exception blocks use them
//! (pl_exec.c, `exec_stmt_block`): work that fails is rolled back alone and
//! the caller's transaction goes on.

use crate::errors::DbError;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::panic::AssertUnwindSafe;

/// Why the work in a subtransaction was rolled back.
pub enum Failure {
    /// An error of ours, returned.
    Ours(DbError),
    /// An error PostgreSQL (or pgrx) raised inside the work (boxed: it is large).
    Raised(Box<CaughtError>),
}

impl Failure {
    pub fn sqlstate(&self) -> String {
        match self {
            Failure::Ours(e) => e.sqlstate.to_string(),
            Failure::Raised(e) => super::ereport::decode_sqlstate(super::ereport::caught_code(e)),
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::Ours(e) => e.message.clone(),
            Failure::Raised(e) => match e.as_ref() {
                CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r.message().to_string(),
                CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
            },
        }
    }

    /// Propagate it as it was: ours is returned to the caller, one
    /// PostgreSQL raised is raised again (unwinding through pgrx).
    pub fn propagate(self) -> DbError {
        match self {
            Failure::Ours(e) => e,
            Failure::Raised(e) => e.rethrow(),
        }
    }
}

/// Run `work` in a subtransaction. Its effects are kept when it succeeds and
/// `keep` is true, and rolled back otherwise (a dry run rolls back what it
/// did). An error raised inside is caught and returned.
pub fn run<T>(keep: bool, work: impl FnOnce() -> Result<T, DbError>) -> Result<T, Failure> {
    // SAFETY: we run in the backend's own thread inside a transaction (a
    // function call); the memory context and resource owner saved here are
    // the caller's, restored after the subtransaction as pl_exec.c does.
    let (context, owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    // SAFETY: as above. BeginInternalSubTransaction switches into the new
    // subtransaction's context; what the work returns must live in the caller's.
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
    }
    let outcome = PgTryBuilder::new(AssertUnwindSafe(|| work().map_err(Failure::Ours)))
        .catch_others(|e| Err(Failure::Raised(Box::new(e))))
        .execute();
    // SAFETY: the subtransaction begun above is the current one again: the
    // work either returned (closing what it opened) or raised, and pgrx
    // flushed PostgreSQL's error state when it caught the error.
    unsafe {
        if outcome.is_ok() && keep {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    }
    outcome
}
