//! Change tracking for incremental checks: which loans committed
//! transactions changed, so that `run_check('changed')` checks only those.
//!
//! `motofinai.track_changes()` puts two triggers on the loan, installment,
//! payment, motor and user tables: `motofinai_track_mark` (plain AFTER ROW)
//! notes the ids a row change touches in backend-local sets (no SPI, no
//! catalog lookup per row), and the constraint trigger `motofinai_track`
//! (DEFERRABLE INITIALLY DEFERRED) appends them at COMMIT, once per
//! transaction, to `motofinai.changed_loans` (a motor's or a user's change
//! stands for their loans, a payment's for its loan's and for the loan of
//! the installment it names: a payment of one loan on another's installment
//! changes that loan's findings). Writes that fire no triggers
//! (`session_replication_role = replica`, a restore with
//! `--disable-triggers`) are not seen: a full run is the fallback.

use crate::checks::tables::{Schema, LOANS, MOTORS, PAYMENTS, SCHEDULE, USERS};
use crate::errors::{finish, null_argument, spi_error, Result};
use crate::pg::fmgr::v1_function;
use crate::pg::trigger::{after_row, trigger, Entries, IntColumn, TriggerCache};
use crate::pg::tuple::IntKind;
use crate::touched;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::c_int;

const MARK_TRIGGER: &str = "motofinai_track_mark";
const FLUSH_TRIGGER: &str = "motofinai_track";
const INSTALL: &str = "motofinai.track_changes()";

thread_local! {
    /// Loans, motors and users touched in this transaction, not yet appended.
    pub static NOTED_LOANS: touched::Set = RefCell::new(touched::Touched::default());
    pub static NOTED_MOTORS: touched::Set = RefCell::new(touched::Touched::default());
    pub static NOTED_USERS: touched::Set = RefCell::new(touched::Touched::default());
    /// Installments payments named in this transaction (their loans are looked up at COMMIT)...
    pub static NOTED_INSTALLMENTS: touched::Set = RefCell::new(touched::Touched::default());
    /// ... but those whose own row changed in it: their loans are noted already.
    pub static CHANGED_INSTALLMENTS: touched::Set = RefCell::new(touched::Touched::default());
    static COLUMN_ENTRIES: Entries<Option<(c_int, IntKind)>> = const { RefCell::new(Vec::new()) };
    static INSTALLMENT_ENTRIES: Entries<Option<(c_int, IntKind)>> = const { RefCell::new(Vec::new()) };
    static OWN_ENTRIES: Entries<Option<(c_int, IntKind)>> = const { RefCell::new(Vec::new()) };
    static SUBJECT_ENTRIES: Entries<Subject> = const { RefCell::new(Vec::new()) };
}

/// The id column, per trigger.
static ID_COLUMN: IntColumn = IntColumn(TriggerCache::new(&COLUMN_ENTRIES), 0);
/// The installment a row names (the payments' third argument), per trigger.
static INSTALLMENT_COLUMN: IntColumn = IntColumn(TriggerCache::new(&INSTALLMENT_ENTRIES), 2);
/// The installment a row is (the installments' fourth argument), per trigger.
static OWN_COLUMN: IntColumn = IntColumn(TriggerCache::new(&OWN_ENTRIES), 3);
/// What the ids are (the trigger's second argument), per trigger: read once,
/// not per row.
static SUBJECT: TriggerCache<Subject> = TriggerCache::new(&SUBJECT_ENTRIES);

#[derive(Clone, Copy)]
enum Subject {
    Loan,
    Motor,
    User,
}

impl Subject {
    fn noted(self) -> &'static std::thread::LocalKey<touched::Set> {
        match self {
            Subject::Loan => &NOTED_LOANS,
            Subject::Motor => &NOTED_MOTORS,
            Subject::User => &NOTED_USERS,
        }
    }
}

/// # Safety
/// Called by PostgreSQL's relcache invalidation machinery with the arguments it documents.
#[pg_guard]
unsafe extern "C-unwind" fn invalidate(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    ID_COLUMN.0.invalidate(relid);
    INSTALLMENT_COLUMN.0.invalidate(relid);
    OWN_COLUMN.0.invalidate(relid);
    SUBJECT.invalidate(relid);
}

pub fn register_callbacks() {
    // SAFETY: called once from _PG_init, with a function that lives as long as the library.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(invalidate), pg_sys::Datum::from(0)) };
}

v1_function!(
    /// `motofinai.track_mark(id_column, 'loan' | 'motor' | 'user'[, installment_column[, own_installment_column]])`:
    /// note the ids.
    motofinai_track_mark,
    pg_finfo_motofinai_track_mark,
    |fcinfo| {
        // SAFETY: the fmgr's fcinfo for this call.
        let (td, op) = unsafe { after_row(fcinfo, "motofinai.track_mark", INSTALL) }?;
        let ids = ID_COLUMN.values(td, op, INSTALL)?;
        let trig = trigger(td);
        let subject = SUBJECT.get(trig.tgoid, crate::pg::tuple::relid(td.tg_relation), || {
            Ok::<_, crate::errors::DbError>(match crate::pg::trigger::arguments(trig).get(1).map(String::as_str) {
                Some("motor") => Subject::Motor,
                Some("user") => Subject::User,
                _ => Subject::Loan,
            })
        })?;
        subject.noted().with_borrow_mut(|t| t.note(ids.into_iter().flatten()));
        let installments = INSTALLMENT_COLUMN.values(td, op, INSTALL)?;
        NOTED_INSTALLMENTS.with_borrow_mut(|t| t.note(installments.into_iter().flatten()));
        let own = OWN_COLUMN.values(td, op, INSTALL)?;
        CHANGED_INSTALLMENTS.with_borrow_mut(|t| t.note(own.into_iter().flatten()));
        Ok(pg_sys::Datum::from(0))
    }
);

v1_function!(
    /// `motofinai.track_flush()`: at COMMIT, the first event appends what was noted.
    motofinai_track_flush,
    pg_finfo_motofinai_track_flush,
    |fcinfo| {
        // SAFETY: the fmgr's fcinfo for this call.
        unsafe { after_row(fcinfo, "motofinai.track_flush", INSTALL) }?;
        flush()?;
        Ok(pg_sys::Datum::from(0))
    }
);

/// Append the noted loans (and those of the noted motors, users and
/// installments), once. An installment whose own row changed in the
/// transaction noted its loan then: no lookup for it (a payment recorded
/// with its installment marked paid, the app's way, needs none).
fn flush() -> Result<()> {
    let installments =
        NOTED_INSTALLMENTS.with_borrow_mut(|t| CHANGED_INSTALLMENTS.with_borrow_mut(|known| t.take_but(known)));
    let [loans, motors, users] =
        [&NOTED_LOANS, &NOTED_MOTORS, &NOTED_USERS].map(|set| set.with_borrow_mut(|t| t.take()));
    let sets = [loans, motors, users, installments];
    if sets.iter().all(Vec::is_empty) {
        return Ok(());
    }
    Spi::run_with_args("SELECT motofinai.note_changed_loans($1, $2, $3, $4)", &sets.map(Into::into)).map_err(spi_error)
}

/// Install (or, with false, remove) change tracking on the loan,
/// installment, payment, motor and user tables.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn track_changes(enabled: default!(Option<bool>, true)) {
    finish(|| {
        let enabled = enabled.ok_or_else(|| null_argument("enabled"))?;
        crate::errors::require_writable("track_changes")?;
        let schema = Schema::current()?;
        let tables: [(&str, &[&str]); 5] = [
            (LOANS, &["id", "loan"]),
            (SCHEDULE, &["loan_application_id", "loan", "", "id"]),
            (PAYMENTS, &["loan_application_id", "loan", "schedule_id"]),
            (MOTORS, &["id", "motor"]),
            (USERS, &["id", "user"]),
        ];
        schema.require(&tables.map(|(t, ..)| t))?;
        let triggers = [
            (MARK_TRIGGER, "motofinai.track_mark", "CREATE TRIGGER", ""),
            (FLUSH_TRIGGER, "motofinai.track_flush", "CREATE CONSTRAINT TRIGGER", "DEFERRABLE INITIALLY DEFERRED"),
        ];
        crate::enforcement::install_row_triggers(&schema, &tables, &triggers, enabled)
    })
}

extension_sql!(
    r#"
CREATE FUNCTION motofinai.track_mark() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'motofinai_track_mark';
CREATE FUNCTION motofinai.track_flush() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'motofinai_track_flush';
COMMENT ON FUNCTION motofinai.track_flush() IS
    'Appends the loans a transaction changed to motofinai.changed_loans at COMMIT; installed by motofinai.track_changes()';
"#,
    name = "tracking_triggers",
    requires = ["config"],
);
