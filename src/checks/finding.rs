//! What a check reports, and the one catalogue of the codes it may report.
//!
//! A new code is added here (and in its family's SQL): the README's code
//! table, the default `motofinai.blocking_codes`, the repairs and the
//! command's tests are checked against this list (`motofinai.finding_codes()`).

use pgrx::prelude::*;
use pgrx::JsonB;

/// One finding of a check.
#[derive(Debug)]
pub struct Finding {
    pub severity: String,
    pub code: String,
    pub entity: String,
    pub entity_id: Option<i64>,
    pub message: String,
    pub details: JsonB,
}

impl Finding {
    /// The table a reference finding is about (foreign_key_violation's
    /// "table", orphaned_rows' "relation").
    pub fn table(&self) -> Option<&str> {
        let d = &self.details.0;
        d.get("table").or_else(|| d.get("relation")).and_then(|v| v.as_str())
    }
}

/// The row every check function returns.
pub type Row = (
    name!(severity, String),
    name!(code, String),
    name!(entity, String),
    name!(entity_id, Option<i64>),
    name!(message, String),
    name!(details, JsonB),
);

impl Finding {
    pub fn into_row(self) -> Row {
        (self.severity, self.code, self.entity, self.entity_id, self.message, self.details)
    }

    pub fn is_error(&self) -> bool {
        self.severity == "error"
    }

    /// Accepted (`motofinai.accepted_findings`): reported, marked, but not
    /// counted by the report, the command, the alerts or enforcement.
    pub fn is_accepted(&self) -> bool {
        self.details.0.get("accepted").is_some()
    }
}

/// Which check reports a code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    Loan,
    Payment,
    Inventory,
    /// The system check's own part (structure, duplicates, versioning).
    System,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Loan => "loan",
            Family::Payment => "payment",
            Family::Inventory => "inventory",
            Family::System => "system",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Severity {
    Error,
    Warning,
}

/// A code as the rules define it.
pub struct Code {
    pub code: &'static str,
    pub family: Family,
    pub severity: Severity,
    pub entity: &'static str,
    /// `fix_consistency` repairs it (src/repair/).
    pub fixable: bool,
    /// In the default `motofinai.blocking_codes`.
    pub blocking: bool,
}

const fn code(code: &'static str, family: Family, severity: Severity, entity: &'static str) -> Code {
    Code { code, family, severity, entity, fixable: false, blocking: false }
}

impl Code {
    const fn fixable(mut self) -> Code {
        self.fixable = true;
        self
    }
    const fn blocking(mut self) -> Code {
        self.blocking = true;
        self
    }
}

use Family::*;
use Severity::*;

/// Every code, by family, in the order the rules list them.
pub const CODES: &[Code] = &[
    code("motor_missing", Loan, Error, "loan").blocking(),
    code("applicant_contact_incomplete", Loan, Warning, "loan"),
    code("submitter_inactive", Loan, Warning, "loan"),
    code("principal_mismatch", Loan, Error, "loan").blocking(),
    code("schedule_total_mismatch", Loan, Error, "loan").blocking(),
    code("schedule_missing", Loan, Warning, "loan"),
    code("schedule_sequence_gap", Loan, Warning, "loan"),
    code("overpaid", Loan, Error, "loan").blocking(),
    code("completed_not_paid", Loan, Error, "loan").blocking(),
    code("paid_not_completed", Loan, Warning, "loan").fixable(),
    code("overdue", Loan, Warning, "loan"),
    code("overdue_status_stale", Loan, Warning, "loan").fixable(),
    code("schedule_paid_without_payment", Loan, Error, "schedule").blocking(),
    code("payment_not_applied", Loan, Error, "schedule").fixable().blocking(),
    code("unapproved_motor_financed", Loan, Error, "loan").blocking(),
    code("loan_not_found", Loan, Error, "loan"),
    code("loan_missing", Payment, Error, "payment"),
    code("installment_missing", Payment, Error, "payment"),
    code("schedule_loan_mismatch", Payment, Error, "payment"),
    code("future_payment_date", Payment, Error, "payment"),
    code("amount_exceeds_schedule", Payment, Warning, "payment"),
    code("amount_differs_from_schedule", Payment, Warning, "payment"),
    code("possible_duplicate", Payment, Warning, "payment"),
    code("payment_before_activation", Payment, Warning, "payment"),
    code("payment_not_found", Payment, Error, "payment"),
    code("duplicate_vin", Inventory, Error, "motor"),
    code("invalid_vin", Inventory, Warning, "motor"),
    code("over_assigned", Inventory, Error, "motor"),
    code("unapproved_motor_financed", Inventory, Error, "motor"),
    code("stock_sold_mismatch", Inventory, Warning, "stock"),
    code("motor_not_found", Inventory, Error, "motor"),
    code("orphaned_rows", System, Error, "table"),
    code("foreign_key_violation", System, Error, "constraint"),
    code("foreign_key_not_validated", System, Warning, "constraint"),
    code("duplicate_installment_sequence", System, Error, "loan"),
    code("versioning_disabled", System, Error, "table"),
    code("versioning_mismatch", System, Error, "table"),
];

/// The default blocking codes, as the catalogue marks them.
#[cfg(any(test, feature = "pg_test"))]
pub fn default_blocking() -> Vec<&'static str> {
    CODES.iter().filter(|c| c.blocking).map(|c| c.code).collect()
}

pub fn is_fixable(code: &str) -> bool {
    CODES.iter().any(|c| c.code == code && c.fixable)
}

/// The catalogue, for documentation and tests.
#[pg_extern(immutable, parallel_safe, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
pub fn finding_codes() -> TableIterator<
    'static,
    (
        name!(code, String),
        name!(family, String),
        name!(severity, String),
        name!(entity, String),
        name!(fixable, bool),
        name!(blocking, bool),
    ),
> {
    TableIterator::new(CODES.iter().map(|c| {
        let severity = if c.severity == Error { "error" } else { "warning" };
        (c.code.into(), c.family.name().into(), severity.into(), c.entity.into(), c.fixable, c.blocking)
    }))
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    #[pgrx::pg_test]
    fn default_blocking_codes_come_from_the_catalogue() {
        let setting = crate::gucs::DEFAULT_BLOCKING_CODES.to_str().unwrap();
        assert_eq!(setting.split(',').collect::<Vec<_>>(), default_blocking());
    }

    #[pgrx::pg_test]
    fn the_repairs_are_the_fixable_codes() {
        let fixable: Vec<&str> = CODES.iter().filter(|c| c.fixable).map(|c| c.code).collect();
        let mut repaired = crate::repair::REPAIRED.to_vec();
        repaired.sort_unstable();
        let mut expected = fixable.clone();
        expected.sort_unstable();
        assert_eq!(repaired, expected);
    }

    #[pgrx::pg_test]
    fn blocking_codes_are_loan_errors() {
        assert!(CODES.iter().filter(|c| c.blocking).all(|c| c.family == Loan && c.severity == Error));
    }
}
