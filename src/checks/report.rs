//! The seed's report format, built from the findings: `{"errors": [...],
//! "warnings": [...]}`, messages only, errors first.

use super::stream::Finding;
use super::{check_all, check_one, check_quick, check_system, Family};
use crate::errors::{sqlstate, DbError, OrRaise, Result};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

/// The findings of a scope: loan, payment or motor (one id, or all rows
/// without one), system or quick.
pub fn findings(scope: Option<&str>, id: Option<i64>) -> Result<Vec<Finding>> {
    let scope = scope.ok_or_else(|| crate::errors::null_argument("scope"))?;
    let family = match scope {
        "loan" => Some(Family::Loan),
        "payment" => Some(Family::Payment),
        "motor" | "inventory" => Some(Family::Inventory),
        "system" | "quick" => None,
        other => {
            return Err(DbError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("unknown scope \"{other}\""))
                .hint("scope is one of loan, payment, motor, system, quick."))
        }
    };
    match (family, id) {
        (Some(f), Some(_)) => check_one(f, id),
        (Some(f), None) => check_all(f)?.collect_all(),
        (None, Some(_)) => Err(DbError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("scope \"{scope}\" takes no id"),
        )),
        (None, None) => if scope == "system" { check_system()? } else { check_quick()? }.collect_all(),
    }
}

pub fn to_report<'a>(findings: impl IntoIterator<Item = &'a Finding> + Clone) -> Value {
    let messages = |severity: &str| -> Vec<Value> {
        findings.clone().into_iter().filter(|f| f.0 == severity).map(|f| Value::String(f.4.clone())).collect()
    };
    json!({ "errors": messages("error"), "warnings": messages("warning") })
}

/// The report for a scope, in the seed's format.
#[pg_extern(stable, parallel_safe, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
pub fn consistency_report(scope: Option<String>, id: default!(Option<i64>, "NULL")) -> JsonB {
    report(scope, id).or_raise()
}

fn report(scope: Option<String>, id: Option<i64>) -> Result<JsonB> {
    Ok(JsonB(to_report(&findings(scope.as_deref(), id)?)))
}

