//! Safe repairs: only the mechanical ones the application itself would have
//! made (consistency-rules.md, "Fixes"), each through a versioned update.
//!
//! Repairs go loan by loan, each loan in a subtransaction: its repairs are
//! applied, then the loan is checked again; the repairs' own consequences
//! that are fixable too (the last installment marked paid makes the loan
//! fully paid) are repaired in the same pass. A loan whose re-check fails, or
//! that would still fail the deferred consistency check at COMMIT, is rolled
//! back alone and reported with a note; the other loans' repairs stand. A dry
//! run does the same and rolls every loan back, so it shows exactly what
//! applying will do.

use super::report::findings;
use super::stream::Finding;
use super::tables::{Schema, LOANS, SCHEDULE};
use super::{check_one, Family};
use crate::catalog::{quote_ident, select_one, spi_error, RawJsonb, Regclass, Table};
use crate::errors::{null_argument, sqlstate, DbError, OrRaise, Result};
use crate::versioning::registered_options;
use crate::versioning::rows::{lock_row, update_row};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// One repair: the row to change and the values it gets.
struct Repair {
    code: &'static str,
    entity: &'static str,
    table: &'static str,
    id: i64,
    /// The loan re-checked after the repair.
    loan_id: i64,
    set: Map<String, Value>,
}

/// When two findings would repair the same column of one row, the first
/// listed wins: an installment that has its payment is paid, not overdue.
const PRECEDENCE: [&str; 3] = ["payment_not_applied", "overdue_status_stale", "paid_not_completed"];

/// The repairs the findings call for, at most one per row and column.
fn plan(found: &[Finding]) -> Result<Vec<Repair>> {
    let mut repairs = Vec::new();
    for (_, code, _, entity_id, _, details) in found {
        let id = entity_id.unwrap_or_default();
        match code.as_str() {
            "overdue_status_stale" => {
                let ids = details.0["installment_ids"].as_array().cloned().unwrap_or_default();
                for sid in ids.iter().filter_map(Value::as_i64) {
                    repairs.push(Repair {
                        code: "overdue_status_stale",
                        entity: "schedule",
                        table: SCHEDULE,
                        id: sid,
                        loan_id: id,
                        set: object(json!({ "status": "overdue" })),
                    });
                }
            }
            "payment_not_applied" => {
                let paid_at = select_one::<String>(
                    "SELECT ($1::date)::timestamptz::text",
                    &[details.0["payment_date"].as_str().unwrap_or_default().into()],
                )?;
                repairs.push(Repair {
                    code: "payment_not_applied",
                    entity: "schedule",
                    table: SCHEDULE,
                    id,
                    loan_id: details.0["loan_id"].as_i64().unwrap_or_default(),
                    set: object(json!({ "status": "paid", "paid_at": paid_at })),
                });
            }
            "paid_not_completed" => {
                let now = select_one::<String>("SELECT now()::text", &[])?;
                repairs.push(Repair {
                    code: "paid_not_completed",
                    entity: "loan",
                    table: LOANS,
                    id,
                    loan_id: id,
                    set: object(json!({ "status": "completed", "completed_at": now })),
                });
            }
            _ => {}
        }
    }
    Ok(without_overlaps(repairs))
}

/// Keep, per row and column, only the repair of the finding that takes
/// precedence (the first found among equals); the order found otherwise.
fn without_overlaps(repairs: Vec<Repair>) -> Vec<Repair> {
    let rank = |r: &Repair| PRECEDENCE.iter().position(|c| *c == r.code).unwrap_or(PRECEDENCE.len());
    let keep: Vec<bool> = {
        let mut best: HashMap<(&str, i64, &str), (usize, usize)> = HashMap::new();
        for (i, r) in repairs.iter().enumerate() {
            for column in r.set.keys() {
                let e = best.entry((r.table, r.id, column.as_str())).or_insert((rank(r), i));
                *e = (*e).min((rank(r), i));
            }
        }
        repairs.iter().enumerate().map(|(i, r)| r.set.keys().all(|c| best[&(r.table, r.id, c.as_str())].1 == i)).collect()
    };
    repairs.into_iter().zip(keep).filter_map(|(r, keep)| keep.then_some(r)).collect()
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Repair {
    fn oid(&self, schema: &Schema) -> Result<pg_sys::Oid> {
        schema.table(self.table).ok_or_else(|| {
            DbError::new(sqlstate::UNDEFINED_TABLE, format!("Motofinai table \"{}\" does not exist", self.table))
        })
    }

    /// The columns' current values (NULLs when the row is gone).
    fn before(&self, schema: &Schema) -> Result<Map<String, Value>> {
        let row = select_one::<JsonB>(
            &format!("SELECT to_jsonb(t.*) FROM {}.{} t WHERE t.id = $1", schema.quoted, quote_ident(self.table)),
            &[self.id.into()],
        )?;
        let row = row.map(|r| r.0).unwrap_or(Value::Null);
        Ok(self.set.keys().map(|k| (k.clone(), row.get(k).cloned().unwrap_or(Value::Null))).collect())
    }

    /// Change the row: through the row helpers (stating the version) when
    /// the table is versioned, else only if the row still has the values read.
    fn apply(&self, schema: &Schema, before: &Map<String, Value>) -> Result<()> {
        let tbl = Some(Regclass(self.oid(schema)?));
        let table = Table::open(tbl, "table")?;
        match registered_options(&table) {
            Ok(_) => {
                let (_, version) = lock_row(tbl, Some(self.id), None, Some(false))?;
                let set = RawJsonb::from_text(&Value::Object(self.set.clone()).to_string())?;
                update_row(tbl, Some(self.id), version, Some(set))?;
                return Ok(());
            }
            // Not versioned: a compare-and-set on the values read.
            Err(e) if e.sqlstate == sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE => {}
            Err(e) => return Err(e),
        }
        let t = format!("{}.{}", schema.quoted, quote_ident(self.table));
        let sets: Vec<String> = self.set.keys().map(|c| format!("{0} = f.{0}", quote_ident(c))).collect();
        let guard: Vec<String> = before
            .keys()
            .map(|c| format!("coalesce(to_jsonb(r.{0}), 'null') = ($3::jsonb -> {1})", quote_ident(c), crate::catalog::quote_literal(c)))
            .collect();
        let changed = Spi::get_one_with_args::<i64>(
            &format!(
                "WITH u AS (UPDATE {t} AS r SET {} FROM jsonb_populate_record(NULL::{t}, $1) AS f \
                 WHERE r.id = $2 AND {} RETURNING 1) SELECT count(*) FROM u",
                sets.join(", "),
                guard.join(" AND ")
            ),
            &[JsonB(Value::Object(self.set.clone())).into(), self.id.into(), JsonB(Value::Object(before.clone())).into()],
        )
        .map_err(spi_error)?;
        if changed != Some(1) {
            return Err(DbError::new(
                sqlstate::SERIALIZATION_FAILURE,
                format!("{} row {} changed while it was being repaired", self.table, self.id),
            )
            .hint("Run the check again."));
        }
        Ok(())
    }
}

fn summary(before: &Map<String, Value>, after: &Map<String, Value>) -> String {
    after
        .iter()
        .map(|(k, to)| format!("{k}: {} → {}", show(before.get(k).unwrap_or(&Value::Null)), show(to)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

type FixRow = (String, String, Option<i64>, JsonB, String, bool, Option<String>);

impl Repair {
    /// The row this repair reports, with the values read before it.
    fn row(&self, before: &Map<String, Value>, applied: bool, note: Option<String>) -> FixRow {
        let changes: Map<String, Value> = self
            .set
            .iter()
            .map(|(k, to)| (k.clone(), json!({ "from": before.get(k).cloned().unwrap_or(Value::Null), "to": to })))
            .collect();
        let summary = summary(before, &self.set);
        (self.code.into(), self.entity.into(), Some(self.id), JsonB(Value::Object(changes)), summary, applied, note)
    }
}

/// Rounds of repairs per loan: a repair may make its loan fixable in
/// another way once (paid installments, then the completed loan).
const ROUNDS: usize = 3;

fn fix(scope: Option<String>, id: Option<i64>, apply: Option<bool>) -> Result<Vec<FixRow>> {
    let apply = apply.ok_or_else(|| null_argument("apply"))?;
    if apply {
        crate::errors::require_writable("fix_consistency with apply")?;
    }
    let planned = plan(&findings(scope.as_deref(), id)?)?;
    let schema = Schema::current()?;
    let mut loans: Vec<i64> = Vec::new();
    for r in &planned {
        if !loans.contains(&r.loan_id) {
            loans.push(r.loan_id);
        }
    }
    let mut rows = Vec::with_capacity(planned.len());
    for loan in loans {
        let first: Vec<&Repair> = planned.iter().filter(|r| r.loan_id == loan).collect();
        if crate::errors::read_only() {
            // A dry run in a read-only transaction cannot try the repairs:
            // it lists the first round only.
            for r in first {
                rows.push(r.row(&r.before(&schema)?, false, None));
            }
            continue;
        }
        match crate::subxact::run(apply, || repair_loan(&schema, loan, &first)) {
            Ok(done) => rows.extend(done.into_iter().map(|mut row| {
                row.5 = apply;
                row
            })),
            Err(failure) if !concerns_the_loan(&failure.sqlstate()) => failure.raise(),
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

/// Apply a loan's repairs and those they make possible, checking the loan
/// after each round; an error rolls the whole loan back (the caller's
/// subtransaction).
fn repair_loan(schema: &Schema, loan: i64, first: &[&Repair]) -> Result<Vec<FixRow>> {
    let mut rows = Vec::new();
    let mut next: Vec<Repair> = Vec::new();
    for round in 0..ROUNDS {
        let repairs: Vec<&Repair> = if round == 0 { first.to_vec() } else { next.iter().collect() };
        for r in &repairs {
            let before = r.before(schema)?;
            r.apply(schema, &before)?;
            rows.push(r.row(&before, true, None));
        }
        let remaining = check_one(Family::Loan, Some(loan))?;
        if let Some(r) = repairs.iter().find(|r| r.still_found(&remaining)) {
            return Err(DbError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("repair {} of {} {} did not take effect", r.code, r.entity, r.id),
            ));
        }
        let again = plan(&remaining)?;
        if again.is_empty() {
            if let Some(f) = crate::enforcement::blocking_finding(&remaining)? {
                return Err(DbError::new(
                    sqlstate::CHECK_VIOLATION,
                    format!("it has the blocking finding {} ({}), so the deferred consistency check would \
                             reject the transaction at COMMIT", f.1, f.4),
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

impl Repair {
    /// Is the finding this repair is for still reported?
    fn still_found(&self, remaining: &[Finding]) -> bool {
        remaining.iter().any(|f| {
            f.1 == self.code && (f.3 == Some(self.id) || self.entity == "schedule" && f.3 == Some(self.loan_id))
        })
    }
}

/// The repairs the rules allow for a scope's findings: planned (`apply` false,
/// the default) or applied in the caller's transaction and re-checked.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
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
    TableIterator::new(fix(scope, id, apply).or_raise())
}
