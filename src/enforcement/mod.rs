//! Transaction safety: a transaction that would leave a loan inconsistent is
//! rolled back at COMMIT, for every client.
//!
//! Two row triggers per table (loans, installments, payments):
//! - `motofinai_enforce_mark` (plain AFTER ROW) notes the loans a row change
//!   touches in a backend-local set, and the installments a payment names
//!   (whose loans it changes too): no SPI, no catalog lookup per row;
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
use crate::pg::fmgr::v1_function;
use crate::pg::trigger::{after_row, Entries, IntColumn, TriggerCache};
use crate::pg::tuple::IntKind;
use crate::touched;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::c_int;

/// The constraint name of the deferred check: `SET CONSTRAINTS motofinai_consistency IMMEDIATE`.
pub const CONSTRAINT: &str = "motofinai_consistency";
const MARK_TRIGGER: &str = "motofinai_enforce_mark";
const INSTALL: &str = "motofinai.enforce_consistency()";

fn blocking_codes() -> Vec<String> {
    let raw = crate::gucs::string(&crate::gucs::BLOCKING_CODES);
    let default = crate::gucs::DEFAULT_BLOCKING_CODES.to_string_lossy();
    raw.as_deref().unwrap_or(&default).split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
}

thread_local! {
    /// Loans touched in this transaction and not yet checked.
    pub static TOUCHED: touched::Set = RefCell::new(touched::Touched::default());
    /// Installments payments named in this transaction: their loans are checked too...
    pub static TOUCHED_INSTALLMENTS: touched::Set = RefCell::new(touched::Touched::default());
    /// ... looked up, but those whose own row changed in it (their loans are touched already).
    pub static CHANGED_INSTALLMENTS: touched::Set = RefCell::new(touched::Touched::default());
    static COLUMN_ENTRIES: Entries<Option<(c_int, IntKind)>> = const { RefCell::new(Vec::new()) };
    static INSTALLMENT_ENTRIES: Entries<Option<(c_int, IntKind)>> = const { RefCell::new(Vec::new()) };
    static OWN_ENTRIES: Entries<Option<(c_int, IntKind)>> = const { RefCell::new(Vec::new()) };
}

/// The loan-id column, per trigger.
static LOAN_COLUMN: IntColumn = IntColumn(TriggerCache::new(&COLUMN_ENTRIES), 0);
/// The installment a payment names (the payments' second argument), per trigger.
static INSTALLMENT_COLUMN: IntColumn = IntColumn(TriggerCache::new(&INSTALLMENT_ENTRIES), 1);
/// The installment a row is (the installments' third argument), per trigger.
static OWN_COLUMN: IntColumn = IntColumn(TriggerCache::new(&OWN_ENTRIES), 2);

/// # Safety
/// Called by PostgreSQL's relcache invalidation machinery with the arguments it documents.
#[pg_guard]
unsafe extern "C-unwind" fn invalidate(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    LOAN_COLUMN.0.invalidate(relid);
    INSTALLMENT_COLUMN.0.invalidate(relid);
    OWN_COLUMN.0.invalidate(relid);
}

pub fn register_callbacks() {
    // SAFETY: called once from _PG_init, with a function that lives as long as the library.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(invalidate), pg_sys::Datum::from(0)) };
}

v1_function!(
    /// `motofinai.enforcement_mark(loan_column[, installment_column[, own_installment_column]])`:
    /// note the touched loans.
    motofinai_enforce_mark,
    pg_finfo_motofinai_enforce_mark,
    |fcinfo| {
        // SAFETY: the fmgr's fcinfo for this call.
        let (td, op) = unsafe { after_row(fcinfo, "motofinai.enforcement_mark", INSTALL) }?;
        let loans = LOAN_COLUMN.values(td, op, INSTALL)?;
        TOUCHED.with_borrow_mut(|t| t.note(loans.into_iter().flatten()));
        let installments = INSTALLMENT_COLUMN.values(td, op, INSTALL)?;
        TOUCHED_INSTALLMENTS.with_borrow_mut(|t| t.note(installments.into_iter().flatten()));
        let own = OWN_COLUMN.values(td, op, INSTALL)?;
        CHANGED_INSTALLMENTS.with_borrow_mut(|t| t.note(own.into_iter().flatten()));
        Ok(pg_sys::Datum::from(0))
    }
);

v1_function!(
    /// `motofinai.enforcement_check(loan_column)`: the deferred check.
    motofinai_enforce_check,
    pg_finfo_motofinai_enforce_check,
    |fcinfo| {
        // SAFETY: the fmgr's fcinfo for this call.
        unsafe { after_row(fcinfo, "motofinai.enforcement_check", INSTALL) }?;
        check_touched()?;
        Ok(pg_sys::Datum::from(0))
    }
);

/// Check every touched loan once (and the loans of the installments
/// payments named); the error lists those left inconsistent.
fn check_touched() -> Result<()> {
    let mut loans: Vec<i64> = TOUCHED.with_borrow_mut(|t| t.take());
    // An installment whose own row changed touched its loan then: no lookup.
    let installments: Vec<i64> =
        TOUCHED_INSTALLMENTS.with_borrow_mut(|t| CHANGED_INSTALLMENTS.with_borrow_mut(|known| t.take_but(known)));
    if loans.is_empty() && installments.is_empty() {
        return Ok(());
    }
    let schema = Schema::current()?;
    if !installments.is_empty() {
        // One lookup for the transaction (shared with change tracking); a
        // payment on its own loan's installment, the usual case, adds nothing.
        let theirs = Spi::get_one_with_args::<Vec<i64>>(
            "SELECT motofinai.installment_loans($1, $2)",
            &[installments.into(), loans.clone().into()],
        )
        .map_err(spi_error)?;
        loans.extend(theirs.unwrap_or_default());
        // Locked and checked in id order, as the noted loans are.
        loans.sort_unstable();
    }
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
        if found.iter().any(|f| blocks(f, &codes)) {
            failing.push((loan, found));
        }
    }
    if failing.is_empty() {
        return Ok(());
    }
    Err(inconsistent(&schema, "Loan", &failing, &codes))
}

/// The codes the deferred check would reject at COMMIT, when it is
/// installed on any of the loan, installment and payment tables (None when
/// it is not): a repair must not leave its loan with one, or the whole
/// transaction would roll back. One catalog read, for a whole repair run.
pub fn blocking_codes_if_enforced() -> Result<Option<Vec<String>>> {
    let schema = Schema::current()?;
    let tables: Vec<pg_sys::Oid> = [LOANS, SCHEDULE, PAYMENTS].iter().filter_map(|t| schema.table(t)).collect();
    let enforced = crate::catalog::select_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger \
          WHERE tgrelid = ANY ($1) AND tgname = $2 AND tgenabled <> 'D')",
        &[tables.into(), CONSTRAINT.into()],
    )?
    .unwrap_or(false);
    Ok(enforced.then(blocking_codes))
}

/// The error: 23514 with constraint `motofinai_consistency`, the entities
/// (a `noun` such as Loan) and first findings in the message, the seed's
/// report in DETAIL.
fn inconsistent(schema: &Schema, noun: &str, failing: &[(i64, Vec<Finding>)], codes: &[String]) -> DbError {
    let ids: Vec<String> = failing.iter().map(|(id, _)| id.to_string()).collect();
    let blocking: Vec<&Finding> = failing.iter().flat_map(|(_, f)| f.iter()).filter(|f| blocks(f, codes)).collect();
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
    if found.iter().any(|f| blocks(f, &codes) && !f.code.ends_with("_not_found")) {
        return Err(inconsistent(&schema, noun, &[(id, found)], &codes));
    }
    Ok(())
}

/// A finding blocks when its code does and nobody accepted it.
pub fn blocks(f: &Finding, codes: &[String]) -> bool {
    codes.contains(&f.code) && !f.is_accepted()
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
    let tables: [(&str, &[&str]); 3] = [
        (LOANS, &["id"]),
        (SCHEDULE, &["loan_application_id", "", "id"]),
        (PAYMENTS, &["loan_application_id", "schedule_id"]),
    ];
    schema.require(&tables.map(|(t, ..)| t))?;
    let triggers = [
        (MARK_TRIGGER, "motofinai.enforcement_mark", "CREATE TRIGGER", ""),
        (CONSTRAINT, "motofinai.enforcement_check", "CREATE CONSTRAINT TRIGGER", "DEFERRABLE INITIALLY DEFERRED"),
    ];
    install_row_triggers(&schema, &tables, &triggers, enabled)
}

/// A pair of AFTER INSERT OR UPDATE OR DELETE row triggers on each table,
/// (re)created, or dropped when `enabled` is false. `tables`: (table, the
/// triggers' arguments, its id column first); `triggers`: (name, function,
/// CREATE ..., options before FOR EACH ROW).
pub fn install_row_triggers(
    schema: &Schema,
    tables: &[(&str, &[&str])],
    triggers: &[(&str, &str, &str, &str)],
    enabled: bool,
) -> Result<()> {
    for (table, args) in tables {
        let Some(oid) = schema.table(table) else { continue };
        let t = format!("{}.{}", schema.quoted, quote_ident(table));
        for (name, ..) in triggers {
            let exists = crate::catalog::select_one::<bool>(
                "SELECT true FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2",
                &[oid.into(), (*name).into()],
            )?
            .unwrap_or(false);
            if exists {
                Spi::run(&format!("DROP TRIGGER {name} ON {t}")).map_err(spi_error)?;
            }
        }
        if !enabled {
            continue;
        }
        let args = args.iter().map(|a| quote_literal(a)).collect::<Vec<_>>().join(", ");
        for (name, function, create, options) in triggers {
            Spi::run(&format!(
                "{create} {name} AFTER INSERT OR UPDATE OR DELETE ON {t} {options} \
                 FOR EACH ROW EXECUTE FUNCTION {function}({args})"
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
