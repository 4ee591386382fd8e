//! Repairs, kept apart from the read-only checks (as PostgreSQL keeps
//! `pg_surgery` apart from `amcheck`): only the mechanical ones the
//! application itself would have made (docs/consistency-rules.md, "Fixes"), each
//! through a versioned update.
//!
//! Repairs go loan by loan, each loan in a subtransaction: its repairs are
//! applied, then the loan is checked again; the repairs' own consequences
//! that are fixable too (the last installment marked paid makes the loan
//! fully paid) are repaired in the same pass. A loan whose re-check fails, or
//! that would still fail the deferred consistency check at COMMIT, is rolled
//! back alone and reported with a note; the other loans' repairs stand. A dry
//! run does the same and rolls every loan back, so it shows exactly what
//! applying will do.

mod apply;
mod plan;

use crate::checks::tables::Schema;
use crate::checks::{findings, Scope};
use crate::errors::{finish, null_argument, sqlstate, DbError, Result};
use crate::pg::subxact;
use pgrx::prelude::*;
use pgrx::JsonB;
use plan::{plan, FixRow, Repair};
use std::collections::HashMap;

/// The codes a repair exists for.
#[cfg(any(test, feature = "pg_test"))]
pub const REPAIRED: [&str; 3] = plan::PRECEDENCE;

/// Errors that are about one loan's data, so that its repairs alone are
/// rolled back: a conflict, a lock timeout, a row gone, a repair that did not
/// hold, a constraint or a trigger of the table refusing the change. Others
/// (privileges, a missing table, ...) would fail every loan: they are raised.
fn concerns_the_loan(state: &str) -> bool {
    state.starts_with("23")
        || [
            sqlstate::SERIALIZATION_FAILURE,
            sqlstate::DEADLOCK_DETECTED,
            sqlstate::LOCK_NOT_AVAILABLE,
            sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
            sqlstate::OBJECT_DELETED,
            sqlstate::RAISE_EXCEPTION,
        ]
        .contains(&state)
}

/// Rounds of repairs per loan: a repair may make its loan fixable in
/// another way once (paid installments, then the completed loan).
const ROUNDS: usize = 3;

fn fix(scope: Option<String>, id: Option<i64>, apply: Option<bool>) -> Result<Vec<FixRow>> {
    let apply = apply.ok_or_else(|| null_argument("apply"))?;
    if apply {
        crate::errors::require_writable("fix_consistency with apply")?;
    }
    let planned = plan(&findings(Scope::parse(scope.as_deref(), id)?)?)?;
    let schema = Schema::current()?;
    let mut rows = Vec::with_capacity(planned.len());
    // A dry run in a read-only transaction cannot try the repairs: it lists
    // the first round only.
    let read_only = crate::errors::read_only();
    let blocking = if read_only { None } else { crate::enforcement::blocking_codes_if_enforced()? };
    // A dry run's trial updates are rolled back: conflict_stats and hot rows
    // count the application's writes, not these.
    let _quiet = (!apply).then(crate::monitoring::store::pause);
    for (loan, first) in by_loan(&planned) {
        if read_only {
            for r in first {
                rows.push(r.row(&r.before(&schema)?, false, None));
            }
            continue;
        }
        match subxact::run(apply, || repair_loan(&schema, loan, &first, blocking.as_deref())) {
            Ok(done) => rows.extend(done.into_iter().map(|mut row| {
                row.5 = apply;
                row
            })),
            Err(failure) if !concerns_the_loan(&failure.sqlstate()) => return Err(failure.propagate()),
            Err(failure) => {
                let why = failure.message();
                let note = format!(
                    "loan {loan} not repaired: {why}; nothing of this loan was changed. \
                     Check it with check_consistency --loan {loan} and correct it by hand."
                );
                for r in first {
                    rows.push(r.row(&r.before(&schema)?, false, Some(note.clone())));
                }
            }
        }
    }
    Ok(rows)
}

/// The repairs grouped by loan, loans in the order first found.
fn by_loan(planned: &[Repair]) -> Vec<(i64, Vec<&Repair>)> {
    let mut groups: Vec<(i64, Vec<&Repair>)> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for r in planned {
        let i = *index.entry(r.loan_id).or_insert_with(|| {
            groups.push((r.loan_id, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(r);
    }
    groups
}

/// Apply a loan's repairs and those they make possible, checking the loan
/// after each round; an error rolls the whole loan back (the caller's
/// subtransaction).
/// `blocking`: the codes the deferred check would reject at COMMIT, when
/// it is installed.
fn repair_loan(schema: &Schema, loan: i64, first: &[&Repair], blocking: Option<&[String]>) -> Result<Vec<FixRow>> {
    let mut rows = Vec::new();
    let mut next: Vec<Repair> = Vec::new();
    for round in 0..ROUNDS {
        let repairs: Vec<&Repair> = if round == 0 { first.to_vec() } else { next.iter().collect() };
        for r in &repairs {
            let before = r.before(schema)?;
            r.apply(schema, &before)?;
            rows.push(r.row(&before, true, None));
        }
        let remaining = findings(Scope::Loan(Some(loan)))?;
        if let Some(r) = repairs.iter().find(|r| r.still_found(&remaining)) {
            return Err(DbError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("repair {} of {} {} did not take effect", r.code, r.entity, r.id),
            ));
        }
        let again = plan(&remaining)?;
        if again.is_empty() {
            let blocked = blocking.and_then(|codes| remaining.iter().find(|f| crate::enforcement::blocks(f, codes)));
            if let Some(f) = blocked {
                return Err(DbError::new(
                    sqlstate::CHECK_VIOLATION,
                    format!(
                        "it has the blocking finding {} ({}), so the deferred consistency check would \
                             reject the transaction at COMMIT",
                        f.code, f.message
                    ),
                ));
            }
            return Ok(rows);
        }
        next = again;
    }
    Err(DbError::new(
        sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("its repairs still cause new findings after {ROUNDS} rounds"),
    ))
}

/// The repairs the rules allow for a scope's findings: planned (`apply` false,
/// the default) or applied in the caller's transaction and re-checked.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
fn fix_consistency(
    scope: Option<String>,
    id: default!(Option<i64>, "NULL"),
    apply: default!(Option<bool>, false),
) -> TableIterator<
    'static,
    (
        name!(code, String),
        name!(entity, String),
        name!(entity_id, Option<i64>),
        name!(changes, JsonB),
        name!(summary, String),
        name!(applied, bool),
        name!(note, Option<String>),
    ),
> {
    TableIterator::new(finish(|| fix(scope, id, apply)))
}
