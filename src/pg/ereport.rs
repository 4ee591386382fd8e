//! Raising an ERROR with every field set: elog.h's `ereport(ERROR, ...)`
//! written out as `errstart` / `errcode` / `errmsg` / ... / `errfinish`.
//!
//! Unguarded on purpose: pgrx's wrappers would turn the `longjmp` into a
//! panic and rebuild the error without its schema, table, column and
//! constraint fields.

use pgrx::pg_sys;
use std::ffi::{c_char, c_int};

extern "C-unwind" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg(fmt: *const c_char, ...) -> c_int;
    fn errdetail(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    #[link_name = "err_generic_string"]
    fn err_field(field: c_int, s: *const c_char) -> c_int;
}

/// An error ready to raise: every string is palloc'd (NULL: absent).
pub struct Report {
    pub code: c_int,
    pub message: *const c_char,
    pub detail: *const c_char,
    pub hint: *const c_char,
    pub fields: [(u8, *const c_char); 4],
}

impl Report {
    /// Raise it. Never returns.
    ///
    /// # Safety
    /// Every frame between here and PostgreSQL's error handler is skipped by
    /// a `longjmp`: none may own anything with a destructor. The strings must
    /// be valid C strings in a memory context that outlives the error (the
    /// current one: error recovery resets it).
    pub unsafe fn raise(self) -> ! {
        const PERCENT_S: &std::ffi::CStr = c"%s";
        // SAFETY: the elog.c protocol, in its order; the caller vouches for
        // the strings and for the frames the jump leaves.
        unsafe {
            if errstart(pgrx::PgLogLevel::ERROR as c_int, std::ptr::null()) {
                errcode(self.code);
                errmsg(PERCENT_S.as_ptr(), self.message);
                if !self.detail.is_null() {
                    errdetail(PERCENT_S.as_ptr(), self.detail);
                }
                if !self.hint.is_null() {
                    errhint(PERCENT_S.as_ptr(), self.hint);
                }
                for (field, value) in self.fields {
                    if !value.is_null() {
                        err_field(field as c_int, value);
                    }
                }
                errfinish(c"motofinai_consistency".as_ptr(), 0, c"motofinai_consistency".as_ptr());
            }
        }
        unreachable!("errfinish returned for an ERROR")
    }
}

/// A copy of `s` in the current memory context (`pstrdup`).
pub fn pstrdup(s: &str) -> *const c_char {
    // SAFETY: we are in a backend with a current memory context; the copy
    // lives as long as it.
    unsafe { pgrx::PgMemoryContexts::CurrentMemoryContext.pstrdup(s) as *const c_char }
}

/// `MAKE_SQLSTATE` (elog.h): five characters, six bits each.
pub const fn encode_sqlstate(s: &str) -> c_int {
    let b = s.as_bytes();
    let mut code = 0;
    let mut i = 0;
    while i < 5 {
        code += (((b[i] - b'0') & 0x3F) as c_int) << (6 * i);
        i += 1;
    }
    code
}

/// `unpack_sql_state` (elog.c): the five characters of a packed SQLSTATE.
pub fn decode_sqlstate(code: c_int) -> String {
    (0..5).map(|i| char::from(b'0' + ((code >> (6 * i)) & 0x3F) as u8)).collect()
}

/// The packed code of an error pgrx caught, for `decode_sqlstate`.
pub fn caught_code(e: &pg_sys::panic::CaughtError) -> c_int {
    use pg_sys::panic::CaughtError::*;
    let report = match e {
        PostgresError(r) | ErrorReport(r) => r,
        RustPanic { ereport, .. } => ereport,
    };
    report.sql_error_code() as c_int
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    #[pgrx::pg_test]
    fn sqlstate_encoding_matches_postgres() {
        assert_eq!(encode_sqlstate("40001"), pgrx::PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE as c_int);
        assert_eq!(encode_sqlstate("55P03"), pgrx::PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE as c_int);
        assert_eq!(decode_sqlstate(encode_sqlstate("MF002")), "MF002");
    }
}
