//! Safe repairs: only the mechanical ones the application itself would have
//! made (consistency-rules.md, "Fixes"), each through a versioned update,
//! re-checked before the transaction can commit.

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

/// The repairs the findings call for, in the order found.
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
    Ok(repairs)
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

type FixRow = (String, String, Option<i64>, JsonB, String, bool);

fn fix(scope: Option<String>, id: Option<i64>, apply: Option<bool>) -> Result<Vec<FixRow>> {
    let apply = apply.ok_or_else(|| null_argument("apply"))?;
    if apply {
        crate::errors::require_writable("fix_consistency with apply")?;
    }
    let found = findings(scope.as_deref(), id)?;
    let repairs = plan(&found)?;
    let schema = Schema::current()?;
    let mut rows = Vec::with_capacity(repairs.len());
    for r in &repairs {
        let before = r.before(&schema)?;
        if apply {
            r.apply(&schema, &before)?;
        }
        let changes: Map<String, Value> = r
            .set
            .iter()
            .map(|(k, to)| (k.clone(), json!({ "from": before.get(k).cloned().unwrap_or(Value::Null), "to": to })))
            .collect();
        rows.push((r.code.to_string(), r.entity.to_string(), Some(r.id), JsonB(Value::Object(changes)), summary(&before, &r.set), apply));
    }
    if apply {
        recheck(&repairs)?;
    }
    Ok(rows)
}

/// After applying: none of the repaired findings may remain, or nothing commits.
fn recheck(repairs: &[Repair]) -> Result<()> {
    let mut loans: Vec<i64> = repairs.iter().map(|r| r.loan_id).collect();
    loans.sort_unstable();
    loans.dedup();
    for loan in loans {
        let remaining = check_one(Family::Loan, Some(loan))?;
        let left = repairs.iter().find(|r| {
            r.loan_id == loan
                && remaining.iter().any(|f| f.1 == r.code && (f.3 == Some(r.id) || r.entity == "schedule" && f.3 == Some(loan)))
        });
        if let Some(r) = left {
            return Err(DbError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("repair {} of {} {} did not take effect; nothing was changed", r.code, r.entity, r.id),
            ));
        }
    }
    Ok(())
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
    ),
> {
    TableIterator::new(fix(scope, id, apply).or_raise())
}
