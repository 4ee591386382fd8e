//! What to repair: the findings' repairs, at most one per row and column.

use crate::catalog::select_one;
use crate::checks::finding::Finding;
use crate::checks::tables::{LOANS, SCHEDULE};
use crate::errors::Result;
use pgrx::JsonB;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// One repair: the row to change and the values it gets.
pub struct Repair {
    pub code: &'static str,
    pub entity: &'static str,
    pub table: &'static str,
    pub id: i64,
    /// The loan re-checked after the repair.
    pub loan_id: i64,
    pub set: Map<String, Value>,
}

/// The codes repaired, in order of precedence: when two findings would
/// repair the same column of one row, the first listed wins (an installment
/// that has its payment is paid, not overdue). The catalogue's `fixable`
/// codes are exactly these (a test checks it).
pub const PRECEDENCE: [&str; 3] = ["payment_not_applied", "overdue_status_stale", "paid_not_completed"];

/// fix_consistency's row: code, entity, entity_id, changes, summary, applied, note.
pub type FixRow = (String, String, Option<i64>, JsonB, String, bool, Option<String>);

/// The repairs the findings call for, at most one per row and column.
pub fn plan(found: &[Finding]) -> Result<Vec<Repair>> {
    let mut repairs = Vec::new();
    for f in found.iter().filter(|f| crate::checks::finding::is_fixable(&f.code)) {
        let (id, details) = (f.entity_id.unwrap_or_default(), &f.details);
        match f.code.as_str() {
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
        repairs
            .iter()
            .enumerate()
            .map(|(i, r)| r.set.keys().all(|c| best[&(r.table, r.id, c.as_str())].1 == i))
            .collect()
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
    /// The row this repair reports, with the values read before it.
    pub fn row(&self, before: &Map<String, Value>, applied: bool, note: Option<String>) -> FixRow {
        let changes: Map<String, Value> = self
            .set
            .iter()
            .map(|(k, to)| (k.clone(), json!({ "from": before.get(k).cloned().unwrap_or(Value::Null), "to": to })))
            .collect();
        let summary = summary(before, &self.set);
        (self.code.into(), self.entity.into(), Some(self.id), JsonB(Value::Object(changes)), summary, applied, note)
    }
}

impl Repair {
    /// Is the finding this repair is for still reported?
    pub fn still_found(&self, remaining: &[Finding]) -> bool {
        remaining.iter().any(|f| {
            f.code == self.code
                && (f.entity_id == Some(self.id) || self.entity == "schedule" && f.entity_id == Some(self.loan_id))
        })
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
