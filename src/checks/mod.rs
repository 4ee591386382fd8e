//! Consistency checks over the Motofinai tables, as set-returning functions.
//!
//! Each family is a few set-based statements (`sql/*.sql`) that the planner
//! can hash-join and aggregate; a single-entity form runs the same statement
//! restricted to one id, which the tables' indexes serve. Checking (the
//! queries, streamed by [`stream`]) is kept apart from reporting ([`report`]).

mod fix;
pub mod report;
pub mod stream;
mod system;
pub mod tables;

use crate::errors::{OrRaise, Result};
use pgrx::prelude::*;
use stream::{Finding, Query, Stream};
use tables::{Schema, LOANS, MOTORS, PAYMENTS, SCHEDULE, STOCK, USERS};

const LOAN_SQL: &str = include_str!("sql/loan.sql");
const PAYMENT_SQL: &str = include_str!("sql/payment.sql");
const DUP_ONE_SQL: &str = include_str!("sql/dup_one.sql");
const DUP_ALL_SQL: &str = include_str!("sql/dup_all.sql");
const INVENTORY_SQL: &str = include_str!("sql/inventory.sql");

/// The three entity families a single id can be checked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Loan,
    Payment,
    Inventory,
}

impl Family {
    fn tables(self) -> &'static [&'static str] {
        match self {
            Family::Loan => &[LOANS, SCHEDULE, PAYMENTS, MOTORS, USERS],
            Family::Payment => &[PAYMENTS, LOANS, SCHEDULE],
            Family::Inventory => &[MOTORS, STOCK, LOANS],
        }
    }

    /// The family's statement, for one id (`$1`) or for every row.
    fn query(self, schema: &Schema, id: Option<i64>) -> Query {
        let filter = if id.is_some() { "= $1" } else { "IS NOT NULL" };
        let sql = match self {
            Family::Loan => LOAN_SQL.replace("@loan@", filter),
            Family::Payment => PAYMENT_SQL
                .replace("@dup@", if id.is_some() { DUP_ONE_SQL } else { DUP_ALL_SQL })
                .replace("@pay@", filter),
            Family::Inventory => INVENTORY_SQL.replace("@motor@", filter),
        };
        Query { sql: schema.render(&sql), id, settings: &[] }
    }

    /// The row that answers a check on an id that does not exist.
    fn not_found(self, id: i64) -> Finding {
        let (code, entity, noun) = match self {
            Family::Loan => ("loan_not_found", "loan", "Loan"),
            Family::Payment => ("payment_not_found", "payment", "Payment"),
            Family::Inventory => ("motor_not_found", "motor", "Motor"),
        };
        (
            "error".into(),
            code.into(),
            entity.into(),
            Some(id),
            format!("{noun} {id} not found"),
            pgrx::JsonB(serde_json::json!({ "id": id })),
        )
    }

    fn id_argument(self) -> &'static str {
        match self {
            Family::Loan => "loan_id",
            Family::Payment => "payment_id",
            Family::Inventory => "motor_id",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Family::Loan => LOANS,
            Family::Payment => PAYMENTS,
            Family::Inventory => MOTORS,
        }
    }
}

/// The findings for one entity: its not-found row, or its family's rows.
pub fn check_one(family: Family, id: Option<i64>) -> Result<Vec<Finding>> {
    let id = id.ok_or_else(|| crate::errors::null_argument(family.id_argument()))?;
    let schema = Schema::current()?;
    schema.require(family.tables())?;
    let exists = crate::catalog::select_one::<bool>(
        &format!("SELECT EXISTS (SELECT FROM {}.{} WHERE id = $1)", schema.quoted, family.table()),
        &[id.into()],
    )?
    .unwrap_or(false);
    if !exists {
        return Ok(vec![family.not_found(id)]);
    }
    Stream::new(vec![family.query(&schema, Some(id))]).collect_all()
}

/// The findings of one family over every row, streamed.
pub fn check_all(family: Family) -> Result<Stream> {
    let schema = Schema::current()?;
    schema.require(family.tables())?;
    Ok(Stream::new(vec![family.query(&schema, None)]))
}

/// Everything in the rules' system section.
pub fn check_system() -> Result<Stream> {
    let schema = Schema::current()?;
    schema.require(&tables::ALL[..7])?;
    let mut queries = system::structural(&schema)?;
    queries.extend([Family::Loan, Family::Payment, Family::Inventory].map(|f| f.query(&schema, None)));
    Ok(Stream::new(queries))
}

/// The system section's own part: orphans, foreign keys, duplicates and
/// versioning triggers (the system check is this plus the three families).
pub fn check_structure() -> Result<Stream> {
    let schema = Schema::current()?;
    schema.require(&tables::ALL[..7])?;
    Ok(Stream::new(system::structural(&schema)?))
}

/// The cheap, critical subset the command runs with no scope.
pub fn check_quick() -> Result<Stream> {
    let schema = Schema::current()?;
    schema.require(&[LOANS, SCHEDULE, PAYMENTS, MOTORS, STOCK])?;
    Ok(Stream::new(system::quick(&schema)))
}

/// A check function: SQL signature, the seed's row shape, and its body.
/// (pgrx reads the return type from the tokens, so it is spelled out here once.)
macro_rules! check_fn {
    // The parameters pass through as raw tokens, not as a `ty` fragment, so
    // that pgrx sees their `Option` and declares the function non-strict: a
    // NULL id is an error, not an empty result.
    ($(#[$doc:meta])* $rust:ident as $sql:literal ($($params:tt)*) => $body:expr) => {
        $(#[$doc])*
        #[pg_extern(stable, parallel_safe, security_invoker, name = $sql)]
        #[search_path(pg_catalog, pg_temp)]
        pub fn $rust($($params)*) -> TableIterator<
            'static,
            (
                name!(severity, String),
                name!(code, String),
                name!(entity, String),
                name!(entity_id, Option<i64>),
                name!(message, String),
                name!(details, pgrx::JsonB),
            ),
        > {
            TableIterator::new($body.or_raise())
        }
    };
}

check_fn!(
    /// The findings for one loan (`loan_not_found` when there is no such loan).
    check_loan_one as "check_loan_consistency" (loan_id: Option<i64>) => check_one(Family::Loan, loan_id)
);
check_fn!(
    /// The loan rules over every loan, streamed.
    check_loan_all as "check_loan_consistency" () => check_all(Family::Loan)
);
check_fn!(check_payment_one as "check_payment_consistency" (payment_id: Option<i64>) => check_one(Family::Payment, payment_id));
check_fn!(check_payment_all as "check_payment_consistency" () => check_all(Family::Payment));
check_fn!(check_inventory_one as "check_inventory_consistency" (motor_id: Option<i64>) => check_one(Family::Inventory, motor_id));
check_fn!(check_inventory_all as "check_inventory_consistency" () => check_all(Family::Inventory));
check_fn!(check_system_consistency as "check_system_consistency" () => check_system());
check_fn!(check_quick_consistency as "check_quick_consistency" () => check_quick());
check_fn!(
    /// The system check without the families: what `check_consistency --all`
    /// runs as its own phase.
    check_structural_consistency as "check_structural_consistency" () => check_structure()
);
check_fn!(
    /// The findings of any scope (loan, payment or motor with or without an
    /// id, system, quick): what run_check records.
    check_findings as "check_findings" (scope: Option<String>, id: default!(Option<i64>, "NULL"))
        => report::findings(scope.as_deref(), id)
);

/// Create the indexes the single-entity checks need and Django's schema
/// lacks: duplicate payment references, bank references and check numbers,
/// and duplicate VINs (compared trimmed and upper-cased). Idempotent.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn create_check_indexes() {
    create_indexes().or_raise()
}

fn create_indexes() -> Result<()> {
    crate::errors::require_writable("create_check_indexes")?;
    let schema = Schema::current()?;
    schema.require(&[PAYMENTS, MOTORS])?;
    // (index, table, indexed columns or expressions, the column that must not be blank)
    for (name, table, keys, column) in [
        ("motofinai_payment_reference_idx", PAYMENTS, "reference", "reference"),
        ("motofinai_payment_bank_reference_idx", PAYMENTS, "bank_name, bank_reference", "bank_reference"),
        ("motofinai_payment_check_number_idx", PAYMENTS, "bank_name, check_number", "check_number"),
        ("motofinai_motor_vin_idx", MOTORS, "(upper(btrim(chassis_number)))", "chassis_number"),
    ] {
        Spi::run(&format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {}.{table} ({keys}) WHERE btrim({column}) <> ''",
            schema.quoted
        ))
        .map_err(crate::catalog::spi_error)?;
    }
    Ok(())
}
