//! Every error this extension raises, with its SQLSTATE, in one place.
//!
//! pgrx's own error path carries only code, message, detail and hint. Clients
//! tell our conflict apart from PostgreSQL's own 40001s by `constraint_name`,
//! so [`DbError::raise`] reports through `errstart`/`errfinish` itself and can
//! set the schema, table, column and constraint fields.

use pgrx::pg_sys;
use std::ffi::{c_char, c_int};

/// Custom SQLSTATEs live in class `MF` (the first letter in I–Z marks an
/// implementation-defined class, so PostgreSQL never uses it).
pub mod sqlstate {
    /// Strict mode: an UPDATE that does not state the version column.
    pub const VERSION_NOT_STATED: &str = "MF001";
    /// The row a helper was asked for no longer exists (the seed's `object_deleted`).
    pub const OBJECT_DELETED: &str = "MF002";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    pub const RAISE_EXCEPTION: &str = "P0001";
    pub const NULL_VALUE_NOT_ALLOWED: &str = "22004";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const INVALID_SCHEMA_NAME: &str = "3F000";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const NAME_TOO_LONG: &str = "42622";
    pub const INVALID_NAME: &str = "42602";
    pub const GENERATED_ALWAYS: &str = "428C9";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const TRIGGER_PROTOCOL_VIOLATED: &str = "39P01";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
}

/// The `constraint_name` of the optimistic-locking conflict.
pub const VERSION_CONSTRAINT: &str = "motofinai_version_check";

pub type Result<T> = std::result::Result<T, DbError>;

/// The last step of every SQL-callable function: the value, or the error raised.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => e.raise(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DbError {
    pub sqlstate: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
}

impl DbError {
    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        DbError { sqlstate, message: message.into(), ..Default::default() }
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
    pub fn table(mut self, schema: &str, table: &str) -> Self {
        self.schema = Some(schema.into());
        self.table = Some(table.into());
        self
    }
    pub fn column(mut self, c: impl Into<String>) -> Self {
        self.column = Some(c.into());
        self
    }
    pub fn constraint(mut self, c: impl Into<String>) -> Self {
        self.constraint = Some(c.into());
        self
    }

    /// Raise this error as a PostgreSQL ERROR. Never returns.
    ///
    /// Call it only from a frame that owns nothing with a destructor (the
    /// `longjmp` skips them): the pattern is `inner(args).or_raise()`
    /// where `inner` took ownership of everything (see [`OrRaise`]).
    pub fn raise(self) -> ! {
        // Copy everything into palloc'd memory, which error recovery frees,
        // then drop the Rust strings before jumping.
        let pg = |s: &str| -> *const c_char {
            let clean = s.replace('\0', "");
            unsafe {
                pgrx::PgMemoryContexts::CurrentMemoryContext.pstrdup(&clean) as *const c_char
            }
        };
        let opt = |s: &Option<String>| s.as_deref().map(pg).unwrap_or(std::ptr::null());
        let code = encode_sqlstate(self.sqlstate);
        let message = pg(&self.message);
        let detail = opt(&self.detail);
        let hint = opt(&self.hint);
        let fields = [
            (pg_sys::PG_DIAG_SCHEMA_NAME, opt(&self.schema)),
            (pg_sys::PG_DIAG_TABLE_NAME, opt(&self.table)),
            (pg_sys::PG_DIAG_COLUMN_NAME, opt(&self.column)),
            (pg_sys::PG_DIAG_CONSTRAINT_NAME, opt(&self.constraint)),
        ];
        drop(self);
        unsafe { report(code, message, detail, hint, &fields) }
    }
}

// Unguarded on purpose: pgrx's wrappers would turn the longjmp into a panic
// and rebuild the error without its fields.
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

unsafe fn report(
    code: c_int,
    message: *const c_char,
    detail: *const c_char,
    hint: *const c_char,
    fields: &[(u8, *const c_char)],
) -> ! {
    const PERCENT_S: &std::ffi::CStr = c"%s";
    if errstart(pgrx::PgLogLevel::ERROR as c_int, std::ptr::null()) {
        errcode(code);
        errmsg(PERCENT_S.as_ptr(), message);
        if !detail.is_null() {
            errdetail(PERCENT_S.as_ptr(), detail);
        }
        if !hint.is_null() {
            errhint(PERCENT_S.as_ptr(), hint);
        }
        for &(field, value) in fields {
            if !value.is_null() {
                err_field(field as c_int, value);
            }
        }
        errfinish(c"motofinai_consistency".as_ptr(), 0, c"motofinai_consistency".as_ptr());
    }
    unreachable!("errfinish returned for an ERROR")
}

/// PostgreSQL's MAKE_SQLSTATE: five characters, six bits each.
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

/// A NULL where the caller must give a value.
pub fn null_argument(name: &str) -> DbError {
    DbError::new(sqlstate::NULL_VALUE_NOT_ALLOWED, format!("{name} must not be NULL"))
}

/// Functions that write refuse up front in a read-only transaction (and on
/// a hot standby, where every transaction is): otherwise the first write
/// inside them fails as an internal error (no transaction id in recovery).
/// Is the transaction read-only (so on a hot standby)?
pub fn read_only() -> bool {
    // SAFETY: a plain global of the backend, read in its own thread.
    unsafe { pg_sys::XactReadOnly }
}

pub fn require_writable(function: &str) -> Result<()> {
    if read_only() {
        let standby = unsafe { pg_sys::RecoveryInProgress() };
        return Err(DbError::new(
            sqlstate::READ_ONLY_SQL_TRANSACTION,
            format!("cannot run {function} in a read-only transaction"),
        )
        .hint(if standby { "This server is a standby: run it on the primary." } else { "Run it in a read-write transaction." }));
    }
    Ok(())
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    #[pgrx::pg_test]
    fn sqlstate_encoding_matches_postgres() {
        assert_eq!(
            encode_sqlstate("40001"),
            pgrx::PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE as c_int
        );
        assert_eq!(
            encode_sqlstate("55P03"),
            pgrx::PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE as c_int
        );
    }
}
