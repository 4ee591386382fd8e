//! Every error this extension raises, with its SQLSTATE, in one place.
//!
//! pgrx's own error path carries only code, message, detail and hint. Clients
//! tell our conflict apart from PostgreSQL's own 40001s by `constraint_name`,
//! so errors are raised through `errstart`/`errfinish` ([`crate::pg::ereport`])
//! with the schema, table, column and constraint fields set.
//!
//! That path `longjmp`s: the Rust frames it leaves are not unwound. So an
//! error is raised in exactly one place, [`finish`], whose frame holds only
//! the error (and drops its strings before jumping). SQL-callable functions
//! are `finish(|| body)`: the body's own frames have returned by then.

use pgrx::pg_sys;

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
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
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
    pub const INTERNAL_ERROR: &str = "XX000";
}

/// The `constraint_name` of the optimistic-locking conflict.
pub const VERSION_CONSTRAINT: &str = "motofinai_version_check";

pub type Result<T> = std::result::Result<T, DbError>;

/// Run the body of a SQL-callable function: its value, or its error raised
/// from this frame, which owns nothing else.
pub fn finish<T>(body: impl FnOnce() -> Result<T>) -> T {
    match body() {
        Ok(v) => v,
        Err(e) => e.raise(),
    }
}

/// An error on its way to the client. Boxed: results stay small on the
/// paths that succeed (the row trigger returns one per row).
#[derive(Debug, Clone)]
pub struct DbError(Box<Fields>);

#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub sqlstate: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
}

impl std::ops::Deref for DbError {
    type Target = Fields;
    fn deref(&self) -> &Fields {
        &self.0
    }
}

impl DbError {
    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        DbError(Box::new(Fields { sqlstate, message: message.into(), ..Default::default() }))
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.0.detail = Some(d.into());
        self
    }
    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.0.hint = Some(h.into());
        self
    }
    pub fn table(mut self, schema: &str, table: &str) -> Self {
        self.0.schema = Some(schema.into());
        self.0.table = Some(table.into());
        self
    }
    pub fn column(mut self, c: impl Into<String>) -> Self {
        self.0.column = Some(c.into());
        self
    }
    pub fn constraint(mut self, c: impl Into<String>) -> Self {
        self.0.constraint = Some(c.into());
        self
    }

    /// Raise it as a PostgreSQL ERROR. Only [`finish`] calls this.
    fn raise(self) -> ! {
        // Everything goes into palloc'd memory, which error recovery frees;
        // the Rust strings are dropped before the jump.
        let pg = |s: &str| crate::pg::ereport::pstrdup(&s.replace('\0', ""));
        let opt = |s: &Option<String>| s.as_deref().map(pg).unwrap_or(std::ptr::null());
        let report = crate::pg::ereport::Report {
            code: crate::pg::ereport::encode_sqlstate(self.sqlstate),
            message: pg(&self.message),
            detail: opt(&self.detail),
            hint: opt(&self.hint),
            fields: [
                (pg_sys::PG_DIAG_SCHEMA_NAME, opt(&self.schema)),
                (pg_sys::PG_DIAG_TABLE_NAME, opt(&self.table)),
                (pg_sys::PG_DIAG_COLUMN_NAME, opt(&self.column)),
                (pg_sys::PG_DIAG_CONSTRAINT_NAME, opt(&self.constraint)),
            ],
        };
        drop(self);
        // SAFETY: this frame (and `finish`'s) owns nothing left to drop, and
        // the caller frames up to PostgreSQL's handler are those of a
        // SQL-callable function's `finish(|| ...)`, which own nothing either.
        unsafe { report.raise() }
    }

    /// The error raised from the middle of a result set (an SRF's iterator),
    /// where a `longjmp` would skip live frames: it unwinds through pgrx
    /// instead, keeping code, message, detail and hint (custom `MF` codes,
    /// which never arise there, would read as XX000).
    pub fn unwind(self) -> ! {
        let code = pgrx::PgSqlErrorCode::from(crate::pg::ereport::encode_sqlstate(self.sqlstate));
        let mut report = pgrx::pg_sys::panic::ErrorReport::new(code, self.message.clone(), "motofinai_consistency");
        if let Some(d) = &self.detail {
            report = report.set_detail(d.clone());
        }
        if let Some(h) = &self.hint {
            report = report.set_hint(h.clone());
        }
        report.report(pgrx::PgLogLevel::ERROR);
        unreachable!("an ERROR report returned")
    }
}

/// A NULL where the caller must give a value.
pub fn null_argument(name: &str) -> DbError {
    DbError::new(sqlstate::NULL_VALUE_NOT_ALLOWED, format!("{name} must not be NULL"))
}

/// Is the transaction read-only (so on a hot standby)?
pub fn read_only() -> bool {
    // SAFETY: a plain global of the backend, read in its own thread.
    unsafe { pg_sys::XactReadOnly }
}

/// Functions that write refuse up front in a read-only transaction (and on
/// a hot standby, where every transaction is): otherwise the first write
/// inside them fails as an internal error (no transaction id in recovery).
pub fn require_writable(function: &str) -> Result<()> {
    if read_only() {
        // SAFETY: reads the backend's shared recovery state; cannot fail.
        let standby = unsafe { pg_sys::RecoveryInProgress() };
        return Err(DbError::new(
            sqlstate::READ_ONLY_SQL_TRANSACTION,
            format!("cannot run {function} in a read-only transaction"),
        )
        .hint(if standby {
            "This server is a standby: run it on the primary."
        } else {
            "Run it in a read-write transaction."
        }));
    }
    Ok(())
}

/// SPI failures that are not PostgreSQL errors (those propagate on their own).
pub fn spi_error(e: pgrx::spi::Error) -> DbError {
    DbError::new(sqlstate::INTERNAL_ERROR, format!("internal SPI failure: {e}"))
}
