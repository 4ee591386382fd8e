//! Consistency checks over the Motofinai tables, as set-returning functions.
//! Read-only: repairs live apart, in `crate::repair`.
//!
//! Each family is a few set-based statements (`sql/*.sql`) that the planner
//! can hash-join and aggregate; a single-entity form runs the same statement
//! restricted to one id, which the tables' indexes serve. The one way in is
//! [`findings`] / [`stream`] with a [`Scope`]; [`stream`] runs the queries,
//! [`report`] turns findings into the seed's report, [`finding`] holds the
//! catalogue of codes.

mod cents;
pub mod finding;
mod keys;
pub mod report;
pub mod stream;
mod system;
pub mod tables;
mod totals;

use crate::errors::{finish, null_argument, sqlstate, DbError, Result};
use finding::Finding;
use pgrx::prelude::*;
use std::ffi::CStr;
use stream::{Query, Stream};
use tables::{Schema, LOANS, MOTORS, PAYMENTS, SCHEDULE, STOCK, USERS};

const LOAN_SQL: &str = include_str!("sql/loan.sql");
const LOAN_INST_SQL: &str = include_str!("sql/loan_inst.sql");
const LOAN_INST_TOTALS_SQL: &str = include_str!("sql/loan_inst_totals.sql");
const PAID_ELSEWHERE_SQL: &str = include_str!("sql/paid_elsewhere.sql");
const PAYMENT_SQL: &str = include_str!("sql/payment.sql");
const DUP_ONE_SQL: &str = include_str!("sql/dup_one.sql");
const DUP_ALL_SQL: &str = include_str!("sql/dup_all.sql");
const DUP_REF_JOIN_SQL: &str = include_str!("sql/dup_ref_join.sql");
const DUP_REF_INDEX_SQL: &str = include_str!("sql/dup_ref_index.sql");
/// loan.sql's <paid> outside the system check.
const PAID_SQL: &str = "SELECT p.loan_application_id AS loan_id, @sum@(p.amount) AS paid, count(*) AS n \
   FROM @s@.payments_payment p WHERE p.loan_application_id @loan@ GROUP BY p.loan_application_id";
const INVENTORY_SQL: &str = include_str!("sql/inventory.sql");
/// inventory.sql's <loans_of> for one motor.
const MOTOR_LOANS: &str = "IN (SELECT id FROM motor \
    UNION SELECT m.id FROM @s@.inventory_motor m WHERE m.stock_id IN (SELECT stock_id FROM motor))";

/// What to check: one entity, every row of a family, or a whole-database
/// check. `None` ids mean every row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    Loan(Option<i64>),
    Payment(Option<i64>),
    Motor(Option<i64>),
    /// Everything in the rules' system section.
    System,
    /// The system section's own part, without the three families.
    Structure,
    /// The cheap, critical subset the command runs with no scope.
    Quick,
}

impl Scope {
    /// A scope as SQL callers name it: loan, payment, motor (or inventory)
    /// with or without an id; system or quick without one.
    pub fn parse(name: Option<&str>, id: Option<i64>) -> Result<Scope> {
        let name = name.ok_or_else(|| null_argument("scope"))?;
        let scope = match name {
            "loan" => Scope::Loan(id),
            "payment" => Scope::Payment(id),
            "motor" | "inventory" => Scope::Motor(id),
            "system" | "quick" => {
                if id.is_some() {
                    return Err(DbError::new(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        format!("scope \"{name}\" takes no id"),
                    ));
                }
                if name == "system" {
                    Scope::System
                } else {
                    Scope::Quick
                }
            }
            other => {
                return Err(DbError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("unknown scope \"{other}\""))
                    .hint("scope is one of loan, payment, motor, system, quick."))
            }
        };
        Ok(scope)
    }

    /// The family and id of a single-entity scope.
    fn entity(self) -> Option<(Family, Option<i64>)> {
        match self {
            Scope::Loan(id) => Some((Family::Loan, id)),
            Scope::Payment(id) => Some((Family::Payment, id)),
            Scope::Motor(id) => Some((Family::Inventory, id)),
            _ => None,
        }
    }
}

/// The findings of a scope, streamed.
pub fn stream(scope: Scope) -> Result<Stream> {
    if let Some((family, Some(id))) = scope.entity() {
        return Ok(Stream::from_findings(check_one(family, id)?));
    }
    let schema = Schema::current()?;
    let queries = match scope.entity() {
        Some((family, _)) => {
            schema.require(family.tables())?;
            vec![family.query(&schema, None)]
        }
        None if scope == Scope::Quick => {
            schema.require(&[LOANS, SCHEDULE, PAYMENTS, MOTORS, STOCK])?;
            system::quick(&schema)
        }
        None => {
            schema.require(&tables::ALL[..7])?;
            let fks = system::foreign_keys(&schema)?;
            if scope == Scope::Structure {
                system::structural(&schema, &fks, vec![])?
            } else {
                system_queries(&schema, &fks)?
            }
        }
    };
    Ok(Stream::new(queries))
}

/// The system check: the system section's own queries and the three
/// families, the loan and payment families and the payments' references
/// sharing one join of the installments to their payments where they can
/// (sql/system.sql). That statement runs first; its findings take their
/// sections' places, so the order is the same either way (the command's
/// phases print in that order too).
fn system_queries(schema: &Schema, fks: &[system::ForeignKey]) -> Result<Vec<Query>> {
    let inst = loan_inst(schema, PaymentOf::Shared).replace("@loan@", "IS NOT NULL");
    let loan = shared_loan_sql().replace("@loan@", "IS NOT NULL");
    let payment = payment_sql(&dup_all(schema), "", &system::of_loans("flagged"));
    let Some(shared) = system::shared(schema, fks, &inst, &loan, &payment)? else {
        let mut queries = system::structural(schema, fks, vec![])?;
        queries.extend([Family::Loan, Family::Payment, Family::Inventory].map(|f| f.query(schema, None)));
        return Ok(queries);
    };
    // The loan and payment rules report neither code.
    let (mut references, families): (Vec<Finding>, Vec<Finding>) = stream::run_whole(&shared.query)?
        .into_iter()
        .partition(|f| matches!(f.code.as_str(), "foreign_key_violation" | "orphaned_rows"));
    let mut instead = Vec::new();
    for (table, name) in shared.tables {
        let (own, others) = references.into_iter().partition(|f| f.table() == Some(name.as_str()));
        references = others;
        instead.push((table, Query::ready(own)));
    }
    let mut queries = system::structural(schema, fks, instead)?;
    queries.extend([Query::ready(families), Family::Inventory.query(schema, None)]);
    Ok(queries)
}

/// The findings of a scope, all at once.
pub fn findings(scope: Scope) -> Result<Vec<Finding>> {
    stream(scope)?.collect_all()
}

/// The loan rules of a set of loans and the payment rules of their
/// payments: what an incremental run checks for the loans that changed.
pub fn findings_for_loans(loans: &[i64]) -> Result<Vec<Finding>> {
    let schema = Schema::current()?;
    schema.require(&[LOANS, SCHEDULE, PAYMENTS, MOTORS, USERS])?;
    // A night without changes: no statement to plan (about 10 ms in a new session).
    if loans.is_empty() {
        return Ok(Vec::new());
    }
    let queries = match loans_shared(&schema, loans)? {
        Some(q) => vec![q],
        None => [Family::Loan, Family::Payment].map(|f| f.query_loans(&schema, loans)).into(),
    };
    Stream::new(queries).collect_all()
}

/// The loan and payment rules of the loans in `$1` in one statement, shared
/// as in the system check (sql/system.sql): their payments read once, their
/// installments joined to them, and only the payments of the loans that may
/// have a finding checked one by one; every payment's duplicates looked up.
/// For 1,100 loans of 100,000 (14,600 payments): about 150 ms against 190 ms
/// for the two families' statements. None where payments' schedule_id is
/// not unique.
fn loans_shared(schema: &Schema, loans: &[i64]) -> Result<Option<Query>> {
    let inst = loan_inst(schema, PaymentOf::SharedSet);
    let payment = payment_sql(&dup_one(schema, "pay_set", true), "", &system::of_loans("flagged"));
    let Some(sql) = system::for_loans(schema, &inst, &shared_loan_sql(), &payment)? else { return Ok(None) };
    let probe = loans.len() <= PROBE_LOANS;
    // Up to PROBE_LOANS loans, the ids hidden from the planner (an InitPlan's
    // array): it estimates a few loans and plans index scans in id order
    // (their lookups' pages in cache) and small hash tables, where with the
    // ids in view it spent 2-14 ms estimating every id against the
    // statistics, six times, and sized its hashes for 30 times the rows (at
    // 1,100 loans, planning 10.8 → 8.2 ms, the run about the same or
    // faster; at 9,000, planning 23 → 9 ms). Past that, hashes pay.
    let set = if probe { "= ANY (coalesce((SELECT $1), NULL))" } else { "= ANY ($1)" };
    let settings: &[_] = if probe { SET_PROBES } else { &[] };
    Ok(Some(Query { sql: sql.replace("@loan@", set), id: None, ids: Some(loans.to_vec()), settings, rows: None }))
}

/// How loan_inst.sql finds each installment's payment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PaymentOf {
    /// The loan family's own statement: a hash join where payments.schedule_id
    /// is unique (the Motofinai schema), else a lookup of one payment per
    /// installment, so that sums never count an installment twice.
    Family,
    /// The shared statements (sql/system.sql, only built where schedule_id
    /// is unique), with the good payments counted ([`GOOD_SQL`]): a join of
    /// every payment.
    Shared,
    /// The same over a set of loans: their payments ("pay_set") hash-joined;
    /// an installment none of them pays may have a payment of another loan
    /// (which is never good): with the totals aggregate, found per loan by
    /// one range scan (sql/paid_elsewhere.sql), else looked up one by one.
    SharedSet,
}

/// The loan rules' per-loan aggregate of the installments, each joined to
/// its payment (see [`PaymentOf`]).
fn loan_inst(schema: &Schema, how: PaymentOf) -> String {
    // An unreadable catalog gets the lookup, which is right either way.
    let payment_of = match how {
        PaymentOf::Family if !schema.is_unique(PAYMENTS, &["schedule_id"]).unwrap_or(false) => {
            "LEFT JOIN LATERAL (SELECT p.schedule_id FROM @s@.payments_payment p WHERE p.schedule_id = s.id LIMIT 1) p ON true"
        }
        PaymentOf::Family | PaymentOf::Shared => "LEFT JOIN @s@.payments_payment p ON p.schedule_id = s.id",
        PaymentOf::SharedSet if schema.fits_totals() => "LEFT JOIN pay_set p ON p.schedule_id = s.id",
        // The planner hashes "pay_set" where it takes the set for a few loans
        // (see loans_shared). OFFSET 0: planned apart, so its one-time filter
        // skips the lookup.
        PaymentOf::SharedSet => {
            "LEFT JOIN pay_set p0 ON p0.schedule_id = s.id \
             LEFT JOIN LATERAL (SELECT q.schedule_id FROM @s@.payments_payment q \
                                 WHERE q.schedule_id = s.id AND p0.id IS NULL OFFSET 0) p1 ON true \
             CROSS JOIN LATERAL (SELECT coalesce(p0.schedule_id, p1.schedule_id) AS schedule_id, \
                                        p0.loan_application_id, p0.amount, p0.payment_date) p"
        }
    };
    let unique_sequences = schema.is_unique(SCHEDULE, &["loan_application_id", "sequence"]).unwrap_or(false);
    if schema.fits_totals() {
        let (good, payment) = match how {
            PaymentOf::Family => ("", "NULL, NULL, NULL"),
            _ => (TOTALS_GOOD_SQL, "p.loan_application_id, p.amount, p.payment_date"),
        };
        let distinct = if unique_sequences { "" } else { "AND (a.t).sequence_sums_ok" };
        let set = how == PaymentOf::SharedSet;
        let (unpaid_ids, elsewhere) = if set { (UNPAID_IDS_SQL, PAID_ELSEWHERE_SQL) } else { ("", "") };
        let fix =
            |c: &str| if set { format!("- coalesce((f.t0).{c}, 0) + coalesce((f.t1).{c}, 0)") } else { String::new() };
        return LOAN_INST_TOTALS_SQL
            .replace("@stale_fix@", &fix("stale"))
            .replace("@misapplied_fix@", &fix("misapplied"))
            .replace("@unpaid_ids@", unpaid_ids)
            .replace("@elsewhere@", elsewhere)
            .replace("@payment_of@", payment_of)
            .replace("@payment@", payment)
            .replace("@distinct@", distinct)
            .replace("@good@", good);
    }
    let (good, payment_of) =
        if how == PaymentOf::Family { ("", payment_of.into()) } else { (GOOD_SQL, format!("{payment_of}{GOOD_JOIN}")) };
    let distinct = if unique_sequences {
        ""
    } else {
        "AND sum(s.sequence) = count(*) * (count(*) + 1) / 2 \
         AND sum(s.sequence::float8 * s.sequence) = count(*) * (count(*) + 1) * (2 * count(*) + 1) / 6"
    };
    LOAN_INST_SQL.replace("@payment_of@", &payment_of).replace("@distinct@", distinct).replace("@good@", good)
}

/// loan_inst_totals.sql's <unpaid_ids> (see sql/paid_elsewhere.sql).
const UNPAID_IDS_SQL: &str = ", min(s.id) FILTER (WHERE p.schedule_id IS NULL) AS lo, \
    max(s.id) FILTER (WHERE p.schedule_id IS NULL) AS hi, \
    array_agg(s.id) FILTER (WHERE p.schedule_id IS NULL) AS unpaid_ids";

/// loan_inst.sql's <good>: the payments of the loan that match one of its
/// installments to the cent ("good"), counted and summed, their future dates
/// counted and their first date: a loan whose payments are all good needs no
/// other pass over its payments (see sql/system.sql). Each installment's
/// test `g.ok` comes from [`GOOD_JOIN`].
const GOOD_SQL: &str = ", count(*) FILTER (WHERE g.ok) AS good, @sum@(p.amount) FILTER (WHERE g.ok) AS good_paid, \
    count(*) FILTER (WHERE g.ok AND p.payment_date > CURRENT_DATE) AS good_future, \
    min(p.payment_date) FILTER (WHERE g.ok) AS good_first";
/// [`GOOD_SQL`]'s columns in loan_inst_totals.sql.
const TOTALS_GOOD_SQL: &str = ", (a.t).good, (a.t).good_paid, (a.t).good_future, (a.t).good_first";
const GOOD_JOIN: &str =
    " CROSS JOIN LATERAL (SELECT p.loan_application_id = s.loan_application_id AND p.amount = s.total_amount AS ok) g";

/// The loan family's own statement (its placeholder <loan> still to fill).
fn loan_family(schema: &Schema) -> String {
    loan_sql(&loan_inst(schema, PaymentOf::Family), PAID_SQL, ("NULL", "NULL"))
}

/// The loan family in a shared statement: over `inst_all`, and `pm_paid`
/// for the loans whose payments are not all good; the others' sum and
/// count are their good payments' (inst_all's `good_paid` and `good`).
/// Joining only those few loans' sums lets the planner drop most loans
/// before it sorts them (about 0.1 s of the system check).
fn shared_loan_sql() -> String {
    loan_sql("SELECT * FROM inst_all", "SELECT * FROM pm_paid", ("i.good_paid", "i.good"))
}

/// The loan family's statement over `inst` (loan_inst.sql's rows) and
/// `paid` (per loan, the payments' sum and count), `otherwise` (sum, count)
/// for a loan `paid` has no row for.
fn loan_sql(inst: &str, paid: &str, otherwise: (&str, &str)) -> String {
    LOAN_SQL
        .replace("@inst@", inst)
        .replace("@paid@", paid)
        .replace("@paid_else@", otherwise.0)
        .replace("@n_else@", otherwise.1)
}

/// The payment family's statement over the payments `p` for which
/// `paying` `pay` holds, with `dup` finding their possible duplicates.
fn payment_sql(dup: &str, paying: &str, pay: &str) -> String {
    PAYMENT_SQL.replace("@dup@", dup).replace("@paying@", paying).replace("@pay@", pay)
}

/// dup_all.sql, its references paired through their index where there is
/// one (the self-join, right without it, is the fallback).
fn dup_all(schema: &Schema) -> String {
    let by_index = schema.has_lookup_index(PAYMENTS, "reference").unwrap_or(false);
    DUP_ALL_SQL.replace("@ref@", if by_index { DUP_REF_INDEX_SQL } else { DUP_REF_JOIN_SQL })
}

/// dup_one.sql over the payments `of`: for a set of payments (`set`), only
/// the references a hash index holds twice are looked up, where there is
/// one (for one payment, its catalog check would cost more than the lookup).
fn dup_one(schema: &Schema, of: &str, set: bool) -> String {
    let index = if set { schema.hash_index(PAYMENTS, "reference").unwrap_or(None) } else { None };
    let twice = index.map_or(String::new(), |index| {
        format!(
            "\n           AND p.reference::text IN (SELECT pg_catalog.unnest(motofinai.keys_indexed_twice({}::pg_catalog.regclass, \
             ARRAY(SELECT r.reference::text FROM @of@ r WHERE btrim(r.reference) <> ''))))",
            index.to_u32()
        )
    });
    DUP_ONE_SQL.replace("@twice@", &twice).replace("@of@", of)
}

/// For statements joining every payment: the planner reckons the rows
/// leaving the workers too dear (it cannot tell that the flags and the
/// duplicate keys keep a handful) and joins serially: 2.5 s against 1.7 s in
/// parallel at 1.3 million payments, 245 ms against 170 ms at 130,000 (the
/// payment family); the system check's shared statement 5.0 s against 4.0 s.
const PARALLEL_JOINS: &[(&CStr, &CStr)] = &[(c"parallel_tuple_cost", c"0.001")];

/// For statements looking payments' duplicates up one by one (dup_one.sql):
/// where every payment has blank bank keys (the statistics' only value), the
/// planner reckons a lookup by bank key returns every row and scans the
/// table instead of the partial index: 165 ms for one payment with a bank
/// reference, against 0.3 ms.
const PROBES: &[(&CStr, &CStr)] = &[(c"enable_seqscan", c"off")];

/// [`PROBES`], with each payment's loan and installment looked up by index too.
const PROBE_JOINS: &[(&CStr, &CStr)] =
    &[(c"enable_seqscan", c"off"), (c"enable_hashjoin", c"off"), (c"enable_mergejoin", c"off")];

/// [`PROBES`] for [`loans_shared`], which the planner would also sort: the
/// installments of the loans for a group aggregate, the loans for a merge
/// join. Hashing both is cheaper: at 1,100 loans, 147 and 149 ms against
/// 165 and 170 ms in paired runs.
const SET_PROBES: &[(&CStr, &CStr)] = &[(c"enable_seqscan", c"off"), (c"enable_sort", c"off")];

/// Up to how many loans an incremental check looks each row up by index.
const PROBE_LOANS: usize = 10_000;

/// The three entity families a single id can be checked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
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
            Family::Loan => loan_family(schema).replace("@loan@", filter),
            Family::Payment => match id {
                Some(_) => payment_sql(&dup_one(schema, "pay", false), "p.id", filter),
                None => payment_sql(&dup_all(schema), "p.id", filter),
            },
            Family::Inventory => {
                let loans_of = if id.is_some() { MOTOR_LOANS } else { "IS NOT NULL" };
                INVENTORY_SQL.replace("@loans_of@", loans_of).replace("@motor@", filter)
            }
        };
        let settings: &[_] = match (self, id) {
            (Family::Payment, None) => PARALLEL_JOINS,
            (Family::Payment, Some(_)) => PROBES,
            _ => &[],
        };
        Query { sql: schema.render(&sql), id, ids: None, settings, rows: None }
    }

    /// The family's statement for the loans in `$1` (a bigint[]): the loan
    /// rules of those loans, the payment rules of their payments.
    fn query_loans(self, schema: &Schema, loans: &[i64]) -> Query {
        let sql = match self {
            Family::Loan => loan_family(schema).replace("@loan@", "= ANY ($1)"),
            Family::Payment => payment_sql(&dup_one(schema, "pay", true), "p.loan_application_id", "= ANY ($1)"),
            Family::Inventory => unreachable!("the inventory rules are not checked by loan"),
        };
        // The planner prices an index probe per payment above a hash of all
        // 2 million installments: for 1,098 changed loans (14,537 payments)
        // the hash took 740 ms of a 1,031 ms incremental run; with the probes
        // the run takes about 270 ms. Past some thousands of loans the hash is
        // the better plan again, so the planner keeps the choice.
        // (The loan family's plan for a set of loans is already the probes.)
        let probe = self == Family::Payment && loans.len() <= PROBE_LOANS;
        let settings: &[_] = if probe { PROBE_JOINS } else { &[] };
        Query { sql: schema.render(&sql), id: None, ids: Some(loans.to_vec()), settings, rows: None }
    }

    /// The row that answers a check on an id that does not exist.
    fn not_found(self, id: i64) -> Finding {
        let (code, entity, noun) = match self {
            Family::Loan => ("loan_not_found", "loan", "Loan"),
            Family::Payment => ("payment_not_found", "payment", "Payment"),
            Family::Inventory => ("motor_not_found", "motor", "Motor"),
        };
        Finding {
            severity: "error".into(),
            code: code.into(),
            entity: entity.into(),
            entity_id: Some(id),
            message: format!("{noun} {id} not found"),
            details: pgrx::JsonB(serde_json::json!({ "id": id })),
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
fn check_one(family: Family, id: i64) -> Result<Vec<Finding>> {
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

/// A single-entity check's id: NULL is an error, not an empty result.
fn one(id: Option<i64>, argument: &str) -> Result<Option<i64>> {
    id.ok_or_else(|| null_argument(argument)).map(Some)
}

/// A check function: SQL signature, the seed's row shape, and its scope.
/// (pgrx reads the return type from the tokens, so it is spelled out here once.)
macro_rules! check_fn {
    // The parameters pass through as raw tokens, not as a `ty` fragment, so
    // that pgrx sees their `Option` and declares the function non-strict: a
    // NULL id is an error, not an empty result.
    ($(#[$doc:meta])* $rust:ident as $sql:literal ($($params:tt)*) => $stream:expr) => {
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
            TableIterator::new(finish(|| $stream).map(Finding::into_row))
        }
    };
}

check_fn!(
    /// The findings for one loan (`loan_not_found` when there is no such loan).
    check_loan_one as "check_loan_consistency" (loan_id: Option<i64>) => stream(Scope::Loan(one(loan_id, "loan_id")?))
);
check_fn!(
    /// The loan rules over every loan, streamed.
    check_loan_all as "check_loan_consistency" () => stream(Scope::Loan(None))
);
check_fn!(check_payment_one as "check_payment_consistency" (payment_id: Option<i64>)
    => stream(Scope::Payment(one(payment_id, "payment_id")?)));
check_fn!(check_payment_all as "check_payment_consistency" () => stream(Scope::Payment(None)));
check_fn!(check_inventory_one as "check_inventory_consistency" (motor_id: Option<i64>)
    => stream(Scope::Motor(one(motor_id, "motor_id")?)));
check_fn!(check_inventory_all as "check_inventory_consistency" () => stream(Scope::Motor(None)));
check_fn!(check_system_consistency as "check_system_consistency" () => stream(Scope::System));
check_fn!(check_quick_consistency as "check_quick_consistency" () => stream(Scope::Quick));
check_fn!(
    /// The system check without the families: what `check_consistency --all`
    /// runs as its own phase.
    check_structural_consistency as "check_structural_consistency" () => stream(Scope::Structure)
);
check_fn!(
    /// The findings of any scope (loan, payment or motor with or without an
    /// id, system, quick): what run_check records.
    check_findings as "check_findings" (scope: Option<String>, id: default!(Option<i64>, "NULL"))
        => stream(Scope::parse(scope.as_deref(), id)?)
);

/// Create the indexes the single-entity checks need and Django's schema
/// lacks: duplicate payment references (a btree for the whole-table checks'
/// ordered pass, a hash index for lookups one by one), bank references and
/// check numbers, and duplicate VINs (compared trimmed and upper-cased).
/// Idempotent.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn create_check_indexes() {
    finish(create_indexes)
}

fn create_indexes() -> Result<()> {
    crate::errors::require_writable("create_check_indexes")?;
    let schema = Schema::current()?;
    schema.require(&[PAYMENTS, MOTORS, SCHEDULE])?;
    // (index, table, method, indexed columns or expressions, the column that must not be blank)
    for (name, table, method, keys, column) in [
        ("motofinai_payment_reference_idx", PAYMENTS, "btree", "reference", "reference"),
        ("motofinai_payment_reference_hash", PAYMENTS, "hash", "reference", "reference"),
        ("motofinai_payment_bank_reference_idx", PAYMENTS, "btree", "bank_name, bank_reference", "bank_reference"),
        ("motofinai_payment_check_number_idx", PAYMENTS, "btree", "bank_name, check_number", "check_number"),
        ("motofinai_motor_vin_idx", MOTORS, "btree", "(upper(btrim(chassis_number)))", "chassis_number"),
    ] {
        Spi::run(&format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {}.{table} USING {method} ({keys}) WHERE btrim({column}) <> ''",
            schema.quoted
        ))
        .map_err(crate::errors::spi_error)?;
    }
    // What the calendar changes, for incremental runs (run_check('changed')):
    // installments falling due, payments whose date arrives.
    for (name, table, keys) in
        [("motofinai_schedule_due_idx", SCHEDULE, "due_date"), ("motofinai_payment_date_idx", PAYMENTS, "payment_date")]
    {
        Spi::run(&format!("CREATE INDEX IF NOT EXISTS {name} ON {}.{table} ({keys})", schema.quoted))
            .map_err(crate::errors::spi_error)?;
    }
    Ok(())
}

check_fn!(
    /// The loan rules of a set of loans and the payment rules of their
    /// payments: what an incremental run (`run_check('changed')`) checks.
    check_loans as "check_loans" (loan_ids: Option<Vec<i64>>)
        => Ok(Stream::from_findings(findings_for_loans(&loan_ids.ok_or_else(|| null_argument("loan_ids"))?)?))
);
