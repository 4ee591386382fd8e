//! The seed's report format, built from the findings: `{"errors": [...],
//! "warnings": [...]}`, messages only, errors first; accepted findings left out.

use super::finding::Finding;
use super::{findings, Scope};
use crate::errors::finish;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

pub fn to_report<'a>(findings: impl IntoIterator<Item = &'a Finding> + Clone) -> Value {
    let messages = |errors: bool| -> Vec<Value> {
        findings
            .clone()
            .into_iter()
            .filter(|f| f.is_error() == errors && !f.is_accepted())
            .map(|f| Value::String(f.message.clone()))
            .collect()
    };
    json!({ "errors": messages(true), "warnings": messages(false) })
}

/// The report for a scope, in the seed's format.
#[pg_extern(stable, parallel_safe, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
pub fn consistency_report(scope: Option<String>, id: default!(Option<i64>, "NULL")) -> JsonB {
    finish(|| Ok(JsonB(to_report(&findings(Scope::parse(scope.as_deref(), id)?)?))))
}
