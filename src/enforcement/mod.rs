//! Transaction safety: a transaction that would leave a loan inconsistent is
//! rolled back at COMMIT, for every client.
//!
//! Two row triggers per table (loans, installments, payments):
//! - `motofinai_enforce_mark` (plain AFTER ROW) notes the loans a row change
//!   touches in a backend-local set: no SPI, no catalog lookup per row;
//! - the constraint trigger `motofinai_consistency` (DEFERRABLE INITIALLY
//!   DEFERRED) fires at COMMIT, or at `SET CONSTRAINTS ... IMMEDIATE`; its
//!   first event checks every noted loan once, locking the loan row so that
//!   concurrent transactions on one loan are checked one after the other.
//!   Later events find nothing left to check.

use crate::catalog::{quote_ident, quote_literal};
use crate::checks::finding::Finding;
use crate::checks::report::to_report;
use crate::checks::tables::{Schema, LOANS, PAYMENTS, SCHEDULE};
use crate::checks::{findings, Scope};
use crate::errors::{finish, null_argument, spi_error, sqlstate, DbError, Result};
use crate::pg::trigger::{row_trigger_data, trigger_function, Entries, Timing, TriggerCache};
use crate::pg::tuple::{self, find_column, IntKind};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::c_int;

/// The constraint name of the deferred check: `SET CONSTRAINTS motofinai_consistency IMMEDIATE`.
pub const CONSTRAINT: &str = "motofinai_consistency";
const MARK_TRIGGER: &str = "motofinai_enforce_mark";

fn blocking_codes() -> Vec<String> {
    let raw = crate::gucs::string(&crate::gucs::BLOCKING_CODES);
    let default = crate::gucs::DEFAULT_BLOCKING_CODES.to_string_lossy();
    raw.as_deref().unwrap_or(&default).split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
}

thread_local! {
    /// Loans touched in this transaction and not yet checked, each with the
    /// subtransaction that first touched it: a loan touched only in a
    /// subtransaction that rolled back (a savepoint, an exception block, a
    /// repair that failed) is not checked at COMMIT.
    static TOUCHED: RefCell<BTreeMap<i64, pg_sys::SubTransactionId>> = const { RefCell::new(BTreeMap::new()) };
    static COLUMN_ENTRIES: Entries<(c_int, IntKind)> = const { RefCell::new(Vec::new()) };
}

/// The loan-id column's attribute number and type, per trigger.
static COLUMNS: TriggerCache<(c_int, IntKind)> = TriggerCache::new(&COLUMN_ENTRIES);

/// # Safety
/// Called by PostgreSQL's transaction callback machinery with the arguments it documents.
#[pg_guard]
unsafe extern "C-unwind" fn at_xact_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE) {
        TOUCHED.with_borrow_mut(|t| t.clear());
    }
}

/// # Safety
/// Called by PostgreSQL's subtransaction callback machinery with the arguments it documents.
#[pg_guard]
unsafe extern "C-unwind" fn at_subxact_end(
    event: pg_sys::SubXactEvent::Type,
    sub: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    TOUCHED.with_borrow_mut(|touched| match event {
        SUBXACT_EVENT_ABORT_SUB => touched.retain(|_, s| *s != sub),
        SUBXACT_EVENT_COMMIT_SUB => touched.values_mut().filter(|s| **s == sub).for_each(|s| *s = parent),
        _ => {}
    });
}

/// # Safety
/// Called by PostgreSQL's relcache invalidation machinery with the arguments it documents.
#[pg_guard]
unsafe extern "C-unwind" fn invalidate(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    COLUMNS.invalidate(relid);
}

pub fn register_callbacks() {
    // SAFETY: called once from _PG_init, with functions that live as long
    // as the library.
    unsafe {
        pg_sys::RegisterXactCallback(Some(at_xact_end), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(at_subxact_end), std::ptr::null_mut());
        pg_sys::CacheRegisterRelcacheCallback(Some(invalidate), pg_sys::Datum::from(0));
    }
}

/// The loans a row change touches: the old row's and the new row's.
fn loans_of(td: &pg_sys::TriggerData, op: u32) -> Result<[Option<i64>; 2]> {
    let trigger = crate::pg::trigger::trigger(td);
    let rel = td.tg_relation;
    let desc = tuple::descriptor(rel);
    let (att, kind) = COLUMNS.get(trigger.tgoid, tuple::relid(rel), || {
        let args = crate::pg::trigger::arguments(trigger);
        let column = match args.as_slice() {
            [column] => column.clone(),
            _ => String::new(),
        };
        let (att, ty) = find_column(desc, &column).ok_or_else(|| {
            DbError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("enforcement trigger's loan column \"{column}\" not found"),
            )
            .hint("Run motofinai.enforce_consistency() again.")
        })?;
        let kind = IntKind::of(ty).ok_or_else(|| {
            DbError::new(sqlstate::DATATYPE_MISMATCH, format!("loan column \"{column}\" is not an integer"))
        })?;
        Ok::<_, DbError>((att, kind))
    })?;
    let read = |t: pg_sys::HeapTuple| (!t.is_null()).then(|| tuple::attr(t, att, desc).map(|d| kind.read(d))).flatten();
    // trigtuple is the new row for INSERT, the old one for UPDATE and DELETE.
    let new = if op == pg_sys::TRIGGER_EVENT_UPDATE { read(td.tg_newtuple) } else { None };
    Ok([read(td.tg_trigtuple), new])
}

/// The trigger data of an AFTER row trigger, or the protocol error.
///
/// # Safety
/// `fcinfo` is the call's.
unsafe fn after_row<'a>(fcinfo: pg_sys::FunctionCallInfo, name: &str) -> Result<(&'a pg_sys::TriggerData, u32)> {
    let ops = [pg_sys::TRIGGER_EVENT_INSERT, pg_sys::TRIGGER_EVENT_UPDATE, pg_sys::TRIGGER_EVENT_DELETE];
    // SAFETY: the caller's fcinfo.
    unsafe { row_trigger_data(fcinfo, Timing::After, &ops) }.map_err(|_| {
        DbError::new(
            sqlstate::TRIGGER_PROTOCOL_VIOLATED,
            format!("{name}() must be fired AFTER INSERT, UPDATE or DELETE FOR EACH ROW"),
        )
        .hint("Use motofinai.enforce_consistency() to install it.")
    })
}

trigger_function!(
    /// `motofinai.enforcement_mark(loan_column)`: note the touched loans.
    motofinai_enforce_mark,
    pg_finfo_motofinai_enforce_mark,
    |fcinfo| {
        let (td, op) = after_row(fcinfo, "motofinai.enforcement_mark")?;
        // SAFETY: a trigger runs inside a transaction.
        let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
        let loans = loans_of(td, op)?;
        TOUCHED.with_borrow_mut(|touched| {
            for loan in loans.into_iter().flatten() {
                touched.entry(loan).or_insert(sub);
            }
        });
        Ok(pg_sys::Datum::from(0))
    }
);

trigger_function!(
    /// `motofinai.enforcement_check(loan_column)`: the deferred check.
    motofinai_enforce_check,
    pg_finfo_motofinai_enforce_check,
    |fcinfo| {
        after_row(fcinfo, "motofinai.enforcement_check")?;
        check_touched()?;
        Ok(pg_sys::Datum::from(0))
    }
);

/// Check every touched loan once; the error lists those left inconsistent.
fn check_touched() -> Result<()> {
    let loans: Vec<i64> = TOUCHED.with_borrow_mut(std::mem::take).into_keys().collect();
    if loans.is_empty() {
        return Ok(());
    }
    let schema = Schema::current()?;
    let codes = blocking_codes();
    let mut failing = Vec::new();
    for loan in loans {
        // Serialize the commits that touch one loan: the later one checks
        // what the earlier one committed.
        let exists = Spi::get_one_with_args::<bool>(
            &format!("SELECT true FROM {}.{} WHERE id = $1 FOR NO KEY UPDATE", schema.quoted, quote_ident(LOANS)),
            &[loan.into()],
        )
        .or_else(crate::catalog::no_row)
        .map_err(spi_error)?
        .unwrap_or(false);
        if !exists {
            continue; // a deleted loan is not an inconsistent one
        }
        let found = findings(Scope::Loan(Some(loan)))?;
        if found.iter().any(|f| codes.contains(&f.code)) {
            failing.push((loan, found));
        }
    }
    if failing.is_empty() {
        return Ok(());
    }
    Err(inconsistent(&schema, "Loan", &failing, &codes))
}

/// The first finding that would make COMMIT fail, when the deferred check
/// is installed on any of the loan, installment and payment tables (a
/// repair must not leave its loan so: the whole transaction would roll back).
pub fn blocking_finding(found: &[Finding]) -> Result<Option<&Finding>> {
    let schema = Schema::current()?;
    let tables: Vec<pg_sys::Oid> = [LOANS, SCHEDULE, PAYMENTS].iter().filter_map(|t| schema.table(t)).collect();
    let enforced = crate::catalog::select_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger \
          WHERE tgrelid = ANY ($1) AND tgname = $2 AND tgenabled <> 'D')",
        &[tables.into(), CONSTRAINT.into()],
    )?
    .unwrap_or(false);
    if !enforced {
        return Ok(None);
    }
    let codes = blocking_codes();
    Ok(found.iter().find(|f| codes.contains(&f.code)))
}

/// The error: 23514 with constraint `motofinai_consistency`, the entities
/// (a `noun` such as Loan) and first findings in the message, the seed's
/// report in DETAIL.
fn inconsistent(schema: &Schema, noun: &str, failing: &[(i64, Vec<Finding>)], codes: &[String]) -> DbError {
    let ids: Vec<String> = failing.iter().map(|(id, _)| id.to_string()).collect();
    let blocking: Vec<&Finding> =
        failing.iter().flat_map(|(_, f)| f.iter()).filter(|f| codes.contains(&f.code)).collect();
    let first: Vec<&str> = blocking.iter().take(3).map(|f| f.message.as_str()).collect();
    let more = blocking.len().saturating_sub(first.len());
    let plural = if ids.len() == 1 { "" } else { "s" };
    DbError::new(
        sqlstate::CHECK_VIOLATION,
        format!(
            "{noun}{plural} {} would be left inconsistent: {}{}",
            ids.join(", "),
            first.join("; "),
            if more > 0 { format!(" (and {more} more)") } else { String::new() }
        ),
    )
    .detail(to_report(failing.iter().flat_map(|(_, f)| f.iter())).to_string())
    .hint("The transaction cannot commit; correct the data in it, or check with motofinai.assert_consistent().")
    .table(&schema.name, LOANS)
    .constraint(CONSTRAINT)
}

/// Raise the enforcement error now if the entity has blocking findings
/// (for a loan) or error-level findings (other scopes).
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn assert_consistent(scope: Option<String>, id: Option<i64>) {
    finish(|| assert_scope(scope, id))
}

fn assert_scope(scope: Option<String>, id: Option<i64>) -> Result<()> {
    let name = scope.ok_or_else(|| null_argument("scope"))?;
    let id = id.ok_or_else(|| null_argument("id"))?;
    let parsed = Scope::parse(Some(&name), Some(id))?;
    let schema = Schema::current()?;
    let found = findings(parsed)?;
    let (noun, codes) = match parsed {
        Scope::Loan(_) => ("Loan", blocking_codes()),
        Scope::Payment(_) => ("Payment", errors_in(&found)),
        _ => ("Motor", errors_in(&found)),
    };
    if found.iter().any(|f| codes.contains(&f.code) && !f.code.ends_with("_not_found")) {
        return Err(inconsistent(&schema, noun, &[(id, found)], &codes));
    }
    Ok(())
}

fn errors_in(found: &[Finding]) -> Vec<String> {
    found.iter().filter(|f| f.is_error()).map(|f| f.code.clone()).collect()
}

/// Install (or, with false, remove) the deferred consistency check on the
/// loan, installment and payment tables.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn enforce_consistency(enabled: default!(Option<bool>, true)) {
    finish(|| enforce(enabled))
}

fn enforce(enabled: Option<bool>) -> Result<()> {
    let enabled = enabled.ok_or_else(|| null_argument("enabled"))?;
    crate::errors::require_writable("enforce_consistency")?;
    let schema = Schema::current()?;
    schema.require(&[LOANS, SCHEDULE, PAYMENTS])?;
    for (table, column) in [(LOANS, "id"), (SCHEDULE, "loan_application_id"), (PAYMENTS, "loan_application_id")] {
        let oid = schema.table(table).expect("required above");
        let t = format!("{}.{}", schema.quoted, quote_ident(table));
        for trigger in [MARK_TRIGGER, CONSTRAINT] {
            let exists = crate::catalog::select_one::<bool>(
                "SELECT true FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2",
                &[oid.into(), trigger.into()],
            )?
            .unwrap_or(false);
            if exists {
                Spi::run(&format!("DROP TRIGGER {trigger} ON {t}")).map_err(spi_error)?;
            }
        }
        if enabled {
            let arg = quote_literal(column);
            Spi::run(&format!(
                "CREATE TRIGGER {MARK_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {t} \
                 FOR EACH ROW EXECUTE FUNCTION motofinai.enforcement_mark({arg})"
            ))
            .map_err(spi_error)?;
            Spi::run(&format!(
                "CREATE CONSTRAINT TRIGGER {CONSTRAINT} AFTER INSERT OR UPDATE OR DELETE ON {t} \
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION motofinai.enforcement_check({arg})"
            ))
            .map_err(spi_error)?;
        }
    }
    Ok(())
}

extension_sql!(
    r#"
CREATE FUNCTION motofinai.enforcement_mark() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'motofinai_enforce_mark';
CREATE FUNCTION motofinai.enforcement_check() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'motofinai_enforce_check';
COMMENT ON FUNCTION motofinai.enforcement_check() IS
    'Deferred loan consistency check; installed by motofinai.enforce_consistency()';
"#,
    name = "enforcement_triggers",
    requires = ["config"],
);
