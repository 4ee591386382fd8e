//! The system section: orphans, every foreign key read from the catalog,
//! duplicates the constraints do not already rule out, and versioning
//! triggers; and the quick check's cheap subset.

use super::stream::Query;
use super::tables::*;
use super::Family;
use crate::catalog::{quote_ident, quote_literal, Regclass, Table};
use crate::errors::spi_error;
use crate::errors::Result;
use pgrx::prelude::*;

const SYSTEM_SQL: &str = include_str!("sql/system.sql");

/// (child table, column, parent table) for the orphan report.
const ORPHANS: [(&str, &str, &str); 5] = [
    (PAYMENTS, "loan_application_id", LOANS),
    (PAYMENTS, "schedule_id", SCHEDULE),
    (SCHEDULE, "loan_application_id", LOANS),
    (LOANS, "motor_id", MOTORS),
    (REPOSSESSIONS, "loan_application_id", LOANS),
];

/// The foreign keys the Motofinai migrations create (child, column, parent).
const EXPECTED_FKS: [(&str, &str, &str); 16] = [
    (MOTORS, "approved_by_id", USERS),
    (MOTORS, "stock_id", STOCK),
    (RECEIVING, "accepted_by_id", USERS),
    (RECEIVING, "inspected_by_id", USERS),
    (RECEIVING, "received_by_id", USERS),
    (LOANS, "financing_term_id", TERMS),
    (LOANS, "second_approval_by_id", USERS),
    (LOANS, "approved_by_id", USERS),
    (LOANS, "motor_id", MOTORS),
    (LOANS, "submitted_by_id", USERS),
    (SCHEDULE, "loan_application_id", LOANS),
    (PAYMENTS, "loan_application_id", LOANS),
    (PAYMENTS, "reconciled_by_id", USERS),
    (PAYMENTS, "recorded_by_id", USERS),
    (PAYMENTS, "schedule_id", SCHEDULE),
    (REPOSSESSIONS, "loan_application_id", LOANS),
];

/// Registered tables whose trigger is missing or disabled, or differs from
/// the registration (a manual CREATE TRIGGER, a restore mixing dumps), and
/// version triggers the registration does not know (partition clones of a
/// registered parent's trigger excepted).
const VERSIONING_SQL: &str = "\
SELECT v.severity, v.code, v.entity, v.entity_id, v.message, v.details FROM (
SELECT 'error', 'versioning_disabled', 'table', NULL::bigint,
       format('Versioning trigger on %s is %s', table_name,
              CASE WHEN trigger_present THEN 'disabled' ELSE 'missing' END),
       jsonb_build_object('table', table_name::text, 'trigger_present', trigger_present,
                          'trigger_enabled', trigger_enabled),
       table_name::text AS tbl
  FROM motofinai.versioned_tables
 WHERE NOT (trigger_present AND trigger_enabled)
UNION ALL
SELECT 'error', 'versioning_mismatch', 'table', NULL::bigint,
       format('Versioning trigger on %s does not match its registration (trigger: %s; registered: %s)', table_name,
              array_to_string(trigger_arguments, ', '), concat_ws(', ', version_column, modified_column, protocol, strict::text)),
       jsonb_build_object('table', table_name::text, 'trigger_arguments', to_jsonb(trigger_arguments),
                          'registered', jsonb_build_object('version_column', version_column,
                              'modified_column', modified_column, 'protocol', protocol, 'strict', strict)),
       table_name::text
  FROM motofinai.versioned_tables
 WHERE trigger_present AND NOT trigger_matches
UNION ALL
SELECT 'error', 'versioning_mismatch', 'table', NULL::bigint,
       format('Versioning trigger %s on %s is not registered', t.tgname, t.tgrelid::regclass),
       jsonb_build_object('table', t.tgrelid::regclass::text, 'trigger', t.tgname::text,
                          'trigger_arguments', to_jsonb(motofinai.trigger_arguments(t.tgargs))),
       t.tgrelid::regclass::text
  FROM pg_catalog.pg_trigger t
 WHERE t.tgfoid = 'motofinai.version_trigger()'::pg_catalog.regprocedure AND t.tgparentid = 0
   AND NOT EXISTS (SELECT FROM motofinai.versioning_config c
                    WHERE c.tbl = t.tgrelid AND t.tgname = 'motofinai_versioning')
) v (severity, code, entity, entity_id, message, details, tbl)
 ORDER BY v.tbl, v.code, v.message";

/// Run only when no unique index on (loan_application_id, sequence) rules
/// duplicates out (see `structural`).
const DUPLICATE_SEQUENCE_SQL: &str = "\
SELECT 'error', 'duplicate_installment_sequence', 'loan', d.loan_application_id,
       format('Installment sequence %s appears %s times', d.sequence, d.n),
       jsonb_build_object('sequence', d.sequence, 'count', d.n, 'installment_ids', to_jsonb(d.ids))
  FROM (SELECT loan_application_id, sequence, count(*) AS n, array_agg(id ORDER BY id) AS ids
          FROM @s@.loans_paymentschedule GROUP BY 1, 2 HAVING count(*) > 1) d
 ORDER BY d.loan_application_id, d.sequence";

/// One statement reporting orphans for each listed relation (those whose
/// tables exist): the quick check's form, an anti-join per relation.
fn orphans(schema: &Schema, relations: &[(&str, &str, &str)]) -> Option<Query> {
    let parts: Vec<String> = relations
        .iter()
        .filter(|(child, _, parent)| schema.table(child).is_some() && schema.table(parent).is_some())
        .map(|(child, column, parent)| {
            format!(
                "SELECT {child_l} AS relation, {col_l} AS column_name, {parent_l} AS target, count(*) AS n, \
                        (array_agg(c.id ORDER BY c.id))[1:10] AS ids \
                   FROM @s@.{child} c \
                  WHERE c.{column} IS NOT NULL \
                    AND NOT EXISTS (SELECT FROM @s@.{parent} p WHERE p.id = c.{column})",
                child_l = quote_literal(child),
                col_l = quote_literal(column),
                parent_l = quote_literal(parent),
            )
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let sql = format!("SELECT {ORPHAN_ROW} FROM ({}) o WHERE o.n > 0", parts.join(" UNION ALL "));
    Some(Query::all(schema.render(&sql)))
}

/// The finding for a relation `o` with orphans (relation, column_name, target, n, ids).
const ORPHAN_ROW: &str = "'error', 'orphaned_rows', 'table', NULL::bigint, \
    format('%s orphaned row(s) in %s: %s references a missing %s', o.n, o.relation, o.column_name, o.target), \
    jsonb_build_object('relation', o.relation, 'column', o.column_name, 'references', o.target, \
                       'count', o.n, 'first_ids', to_jsonb(o.ids))";

/// A foreign key as the catalog has it.
pub struct ForeignKey {
    name: String,
    child: pg_sys::Oid,
    parent: pg_sys::Oid,
    columns: Vec<String>,
    ref_columns: Vec<String>,
    validated: bool,
}

pub fn foreign_keys(schema: &Schema) -> Result<Vec<ForeignKey>> {
    let children: Vec<pg_sys::Oid> = ALL.iter().filter_map(|t| schema.table(t)).collect();
    Spi::connect(|c| {
        c.select(
            "SELECT c.conname::text, c.conrelid, c.confrelid, c.convalidated, \
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i) \
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i), \
                    ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i) \
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) \
               FROM pg_catalog.pg_constraint c \
              WHERE c.contype = 'f' AND c.conrelid = ANY ($1) \
              ORDER BY c.conrelid, c.conname",
            None,
            &[children.into()],
        )?
        .map(|r| {
            Ok(ForeignKey {
                name: r.get::<String>(1)?.unwrap_or_default(),
                child: r.get::<pg_sys::Oid>(2)?.unwrap_or_default(),
                parent: r.get::<pg_sys::Oid>(3)?.unwrap_or_default(),
                validated: r.get::<bool>(4)?.unwrap_or(true),
                columns: r.get::<Vec<String>>(5)?.unwrap_or_default(),
                ref_columns: r.get::<Vec<String>>(6)?.unwrap_or_default(),
            })
        })
        .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
    })
    .map_err(spi_error)
}

/// A reference a child table's rows must resolve: a declared foreign key,
/// an orphan rule of the rules' list, or both (one join serves the two).
struct Reference {
    constraint: Option<String>,
    orphan: bool,
    parent: pg_sys::Oid,
    columns: Vec<String>,
    ref_columns: Vec<String>,
}

/// Each child table's references: its foreign keys, then the orphan rules
/// no foreign key covers (a dropped constraint must not hide orphans).
fn references(schema: &Schema, fks: &[ForeignKey]) -> Vec<(pg_sys::Oid, Vec<Reference>)> {
    let rules: Vec<(pg_sys::Oid, String, pg_sys::Oid)> =
        ORPHANS.iter().filter_map(|(c, col, p)| Some((schema.table(c)?, col.to_string(), schema.table(p)?))).collect();
    let covers = |fk: &ForeignKey, (child, column, parent): &(pg_sys::Oid, String, pg_sys::Oid)| {
        fk.child == *child && fk.parent == *parent && fk.columns == [column.as_str()] && fk.ref_columns == ["id"]
    };
    let declared = fks.iter().map(|fk| {
        let r = Reference {
            constraint: Some(fk.name.clone()),
            orphan: rules.iter().any(|rule| covers(fk, rule)),
            parent: fk.parent,
            columns: fk.columns.clone(),
            ref_columns: fk.ref_columns.clone(),
        };
        (fk.child, r)
    });
    let uncovered =
        rules.iter().filter(|rule| !fks.iter().any(|fk| covers(fk, rule))).map(|(child, column, parent)| {
            let r = Reference {
                constraint: None,
                orphan: true,
                parent: *parent,
                columns: vec![column.clone()],
                ref_columns: vec!["id".into()],
            };
            (*child, r)
        });
    let mut out: Vec<(pg_sys::Oid, Vec<Reference>)> = Vec::new();
    for (child, r) in declared.chain(uncovered) {
        match out.iter_mut().find(|(c, _)| *c == child) {
            Some((_, refs)) => refs.push(r),
            None => out.push((child, vec![r])),
        }
    }
    out
}

/// A child table's references as SQL over the child aliased `alias`: per
/// reference, its join, its broken-row flag, and the findings that read the
/// reference's count `x.nI` and first ids `x.idsI`.
struct Parts {
    table: Table,
    refs: Vec<RefSql>,
    /// The foreign-key and orphan findings, each a SELECT over `x`.
    branches: Vec<String>,
}

/// One reference of [`Parts`].
struct RefSql {
    /// The LEFT JOIN to its parent.
    join: String,
    /// Which of the caller's joins (`reuse`) it is, if any.
    reused: Option<usize>,
    /// True on a row whose reference does not resolve.
    flag: String,
    /// The parent table, schema-qualified.
    parent: String,
}

impl Parts {
    /// `reuse`: joins the caller already has, as (parent, column, alias)
    /// joined on the parent's `id`.
    /// `x`: the CTE with the counts and ids that the findings read.
    fn new(
        child: pg_sys::Oid,
        refs: &[Reference],
        alias: &str,
        reuse: &[(pg_sys::Oid, &str, &str)],
        x: &str,
    ) -> Result<Parts> {
        let table = Table::open(Some(Regclass(child)), "table")?;
        let tl = quote_literal(&table.name);
        let (mut out, mut fk_rows, mut orphan_rows) = (Vec::new(), Vec::new(), Vec::new());
        for (i, r) in refs.iter().enumerate() {
            let parent = Table::open(Some(Regclass(r.parent)), "table")?;
            let reused =
                reuse.iter().position(|(p, c, _)| *p == r.parent && r.columns == [*c] && r.ref_columns == ["id"]);
            let pa = reused.map_or_else(|| format!("p{i}"), |k| reuse[k].2.to_string());
            let on: Vec<String> = r
                .columns
                .iter()
                .zip(&r.ref_columns)
                .map(|(c, p)| format!("{pa}.{} = {alias}.{}", quote_ident(p), quote_ident(c)))
                .collect();
            let not_null: Vec<String> =
                r.columns.iter().map(|c| format!("{alias}.{} IS NOT NULL", quote_ident(c))).collect();
            out.push(RefSql {
                join: format!("LEFT JOIN {} {pa} ON {}", parent.qualified, on.join(" AND ")),
                reused,
                flag: format!("({} AND {pa}.ctid IS NULL)", not_null.join(" AND ")),
                parent: parent.qualified.clone(),
            });
            let (cols, parent_l) = (quote_literal(&r.columns.join(", ")), quote_literal(&parent.name));
            if let Some(name) = &r.constraint {
                fk_rows.push(format!("({}, {cols}, {parent_l}, {x}.n{i}, {x}.ids{i})", quote_literal(name)));
            }
            if r.orphan {
                orphan_rows.push(format!("({tl}, {cols}, {parent_l}, {x}.n{i}, {x}.ids{i})"));
            }
        }
        let mut branches = Vec::new();
        if !fk_rows.is_empty() {
            branches.push(format!(
                "SELECT 'error', 'foreign_key_violation', 'constraint', NULL::bigint, \
                        format('Foreign key %s on %s has %s row(s) whose %s does not resolve in %s', \
                               k.conname, {tl}, k.n, k.cols, k.parent), \
                        jsonb_build_object('constraint', k.conname, 'table', {tl}, 'columns', k.cols, \
                                           'references', k.parent, 'count', k.n, 'first_ids', to_jsonb(k.ids)) \
                   FROM {x} CROSS JOIN LATERAL (VALUES {}) k(conname, cols, parent, n, ids) WHERE k.n > 0",
                fk_rows.join(", ")
            ));
        }
        if !orphan_rows.is_empty() {
            branches.push(format!(
                "SELECT {ORPHAN_ROW} FROM {x} CROSS JOIN LATERAL (VALUES {}) o(relation, column_name, target, n, ids) \
                  WHERE o.n > 0",
                orphan_rows.join(", ")
            ));
        }
        Ok(Parts { table, refs: out, branches })
    }
}

/// One scan per child table finds the rows breaking any of its references
/// (a parallel hash join keeps only them); the few broken rows are then
/// counted per reference, as foreign-key violations and as orphans.
/// `instead`: tables the caller checked itself (see [`shared`]), and their findings.
fn violations(schema: &Schema, fks: &[ForeignKey], mut instead: Vec<(pg_sys::Oid, Query)>) -> Result<Vec<Query>> {
    let mut queries = Vec::new();
    for (child, refs) in references(schema, fks) {
        if let Some(k) = instead.iter().position(|(t, _)| *t == child) {
            queries.push(instead.swap_remove(k).1);
            continue;
        }
        let parts = Parts::new(child, &refs, "ch", &[], "x")?;
        let id = if parts.table.column_type("id")?.is_some() { "ch.id" } else { "NULL::bigint" };
        let (mut joins, mut flags, mut aggs, mut broken) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, r) in parts.refs.iter().enumerate() {
            joins.push(r.join.as_str());
            flags.push(format!("{} AS b{i}", r.flag));
            aggs.push(format!(
                "count(*) FILTER (WHERE b{i}) AS n{i}, (array_agg(id ORDER BY id) FILTER (WHERE b{i}))[1:10] AS ids{i}"
            ));
            broken.push(format!("b{i}"));
        }
        queries.push(Query::all(format!(
            "WITH x AS (SELECT {aggs} FROM (SELECT {id} AS id, {flags} FROM {t} ch {joins}) b WHERE {any}) {}",
            parts.branches.join(" UNION ALL "),
            aggs = aggs.join(", "),
            flags = flags.join(", "),
            t = parts.table.qualified,
            joins = joins.join(" "),
            any = broken.join(" OR "),
        )));
    }
    Ok(queries)
}

/// The payments of the loans whose `pm` count `n` is positive.
pub fn of_loans(n: &str) -> String {
    loans_in("p.loan_application_id", "pm", n)
}

/// The rows whose loan `column` is one of the loans of `counts` whose `n`
/// is positive (a NULL loan id is a group of its own), looked up through the
/// loan index: the planner takes an array it cannot see for a few elements.
/// The arrays are `<counts>_loans`' columns (see [`suspect_loans`]).
fn loans_in(column: &str, counts: &str, n: &str) -> String {
    // coalesce: an array, not a subquery whose rows ANY would compare.
    format!(
        "({column} = ANY (coalesce((SELECT {n} FROM {counts}_loans), '{{}}')) \
          OR {column} IS NULL AND (SELECT {n}_null FROM {counts}_loans))"
    )
}

/// `<counts>_loans`, the loans whose `n` is positive for each `n`, read by
/// [`loans_in`]: one scan of `counts` for all of them.
fn suspect_loans(counts: &str, columns: &[String]) -> String {
    let arrays: Vec<String> = columns
        .iter()
        .map(|n| {
            format!(
                "array_agg(loan_id) FILTER (WHERE {n} > 0) AS {n}, \
                 coalesce(bool_or(loan_id IS NULL AND {n} > 0), false) AS {n}_null"
            )
        })
        .collect();
    format!(", {counts}_loans AS MATERIALIZED (SELECT {} FROM {counts})\n", arrays.join(", "))
}

/// The payments' sum and count of each flagged loan, which the loan rules
/// read: summed again (see [`pm_paid`]). Every other loan's payments are all
/// good, and their sum and count are the good ones' (see sql/system.sql).
const PM_PAID: &str = ", pm_paid AS (
    SELECT p.loan_application_id AS loan_id, @sum@(p.amount) AS paid, count(*) AS n
      FROM @s@.payments_payment p WHERE @flagged@
     GROUP BY p.loan_application_id
)\n";

/// [`PM_PAID`], after `pm_loans`.
fn pm_paid() -> String {
    PM_PAID.replace("@flagged@", &of_loans("flagged"))
}

/// The values of a single-column reference `r` of `child` that do not
/// resolve in `parent` (its qualified name), as (column, a query of one
/// array `v`), where a btree index leads with that column (see
/// [`super::tables::btree_leads_with`]): a skip scan reads one index entry
/// per distinct value (a payment's recorder, among a few users) instead of
/// joining every row.
fn missing_values(child: &Table, r: &Reference, parent: &str) -> Result<Option<(String, String)>> {
    let ([column], [parent_column]) = (r.columns.as_slice(), r.ref_columns.as_slice()) else { return Ok(None) };
    // No predicate: the skip scan reads every value, blank or not.
    let indexed = super::tables::btree_leads_with(child.oid, column, false)?;
    if !indexed {
        return Ok(None);
    }
    let (c, pc) = (quote_ident(column), quote_ident(parent_column));
    Ok(Some((
        c.clone(),
        format!(
            "WITH RECURSIVE d(x) AS ( \
                 SELECT min(c.{c}) FROM {t} c \
                 UNION ALL \
                 SELECT (SELECT min(c.{c}) FROM {t} c WHERE c.{c} > d.x) FROM d WHERE d.x IS NOT NULL) \
             SELECT array_agg(d.x) AS v FROM d \
              WHERE d.x IS NOT NULL AND NOT EXISTS (SELECT FROM {p} q WHERE q.{pc} = d.x)",
            t = child.qualified,
            p = parent
        ),
    )))
}

/// A table whose references the shared statement checks per loan.
struct Folded<'a> {
    table: pg_sys::Oid,
    alias: &'a str,
    /// Its loan column.
    loan: &'a str,
    /// The CTE of system.sql counting its rows per loan.
    counts: &'a str,
    /// The joins system.sql settles per loan, as (parent, column, alias).
    reuse: Vec<(pg_sys::Oid, &'a str, &'a str)>,
    /// For each of `reuse`, the column of `counts` naming the loans whose
    /// rows may break it.
    suspects: Vec<&'a str>,
    /// Columns of `counts` naming loans that other statements read.
    read: &'a [&'a str],
    /// The CTE its findings read.
    x: &'a str,
    /// CTEs that read its counts' loans.
    then: String,
}

/// The system check's shared statement (sql/system.sql), and the tables
/// whose references it checks (id, name).
pub struct Shared {
    pub query: Query,
    pub tables: Vec<(pg_sys::Oid, String)>,
}

/// The system check's shared statement: `inst`, the loan rules' aggregate
/// with its count of good payments, the payments counted per loan, the
/// references of the payments and (where their loan is their only one) of
/// the installments, and `loan` and `payment`, the two families' statements
/// that read them. None where payments' schedule_id is not unique: the
/// families then run their own passes.
pub fn shared(schema: &Schema, fks: &[ForeignKey], inst: &str, loan: &str, payment: &str) -> Result<Option<Shared>> {
    let Some(payments) = schema.table(PAYMENTS) else { return Ok(None) };
    if !schema.is_unique(PAYMENTS, &["schedule_id"])? {
        return Ok(None);
    }
    let (loans, schedule) = (schema.table(LOANS).unwrap_or_default(), schema.table(SCHEDULE).unwrap_or_default());
    let all = references(schema, fks);
    let refs_of = |t: pg_sys::Oid| all.iter().find(|(c, _)| *c == t).map_or(&[][..], |(_, r)| r.as_slice());
    let mut folded = vec![Folded {
        table: payments,
        alias: "p",
        loan: "p.loan_application_id",
        counts: "pm",
        reuse: vec![(loans, "loan_application_id", "l"), (schedule, "schedule_id", "s")],
        suspects: vec!["lost", "odd"],
        // The payment family's payments.
        read: &["flagged"],
        x: "x",
        then: pm_paid(),
    }];
    let to_loan = |r: &Reference| r.parent == loans && r.columns == ["loan_application_id"] && r.ref_columns == ["id"];
    let installments = refs_of(schedule);
    if !installments.is_empty()
        && installments.iter().all(to_loan)
        && Table::open(Some(Regclass(schedule)), "table")?.column_type("id")?.is_some()
    {
        folded.push(Folded {
            table: schedule,
            alias: "s",
            loan: "s.loan_application_id",
            counts: "im",
            reuse: vec![(loans, "loan_application_id", "l")],
            suspects: vec!["lost"],
            read: &[],
            x: "xs",
            then: String::new(),
        });
    }
    // pm's own joins and counts: the payments' references no other CTE settles.
    let (mut pm_joins, mut pm_counts, mut rest, mut xs, mut branches, mut tables) =
        (vec![], vec![], String::new(), String::new(), vec![], vec![]);
    for t in &folded {
        let parts = Parts::new(t.table, refs_of(t.table), t.alias, &t.reuse, t.x)?;
        let mut x = Vec::new();
        let mut columns: Vec<String> = t.read.iter().map(|c| c.to_string()).collect();
        for (i, (r, RefSql { join, reused, flag, parent })) in refs_of(t.table).iter().zip(&parts.refs).enumerate() {
            // Where the broken rows may be: the loans of a count, or the
            // values that do not resolve.
            let mut suspect = |n: String| {
                let rows = loans_in(t.loan, t.counts, &n);
                if !columns.contains(&n) {
                    columns.push(n);
                }
                rows
            };
            let rows = match reused {
                Some(k) => suspect(t.suspects[*k].to_string()),
                // Only the payments have others.
                None => match missing_values(&parts.table, r, parent)? {
                    Some((column, values)) => {
                        rest.push_str(&format!(", {x}_v{i} AS MATERIALIZED ({values})\n", x = t.x));
                        format!("{a}.{column} = ANY (coalesce((SELECT v FROM {x}_v{i}), '{{}}'))", a = t.alias, x = t.x)
                    }
                    None => {
                        pm_joins.push(join.clone());
                        pm_counts.push(format!(", count(*) FILTER (WHERE {flag}) AS n{i}"));
                        suspect(format!("n{i}"))
                    }
                },
            };
            // The broken rows, counted and the first ids listed from the few
            // places that may have any.
            let broken = format!("FROM {} {a} {join} WHERE {rows} AND {flag}", parts.table.qualified, a = t.alias);
            x.push(format!(
                "(SELECT count(*) {broken}) AS n{i}, ARRAY(SELECT {a}.id {broken} ORDER BY {a}.id LIMIT 10) AS ids{i}",
                a = t.alias
            ));
        }
        if !columns.is_empty() {
            rest.push_str(&suspect_loans(t.counts, &columns));
        }
        rest.push_str(&t.then);
        if !x.is_empty() {
            xs.push_str(&format!(", {} AS (SELECT {})\n", t.x, x.join(", ")));
        }
        branches.extend(parts.branches);
        tables.push((t.table, parts.table.name));
    }
    let selects: Vec<String> =
        branches.into_iter().chain([loan, payment].map(|f| format!("SELECT * FROM ({f}) f"))).collect();
    rest.push_str(&xs);
    rest.push_str(&selects.join("\nUNION ALL\n"));
    let sql = system_sql(&[
        ("pay_set", ""),
        ("payments", "@s@.payments_payment"),
        ("loans", "@s@.loans_loanapplication"),
        ("inst", inst),
        ("joins", &pm_joins.join(" ")),
        ("counts", &pm_counts.concat()),
        ("rest", &rest),
    ]);
    let query = Query { settings: super::PARALLEL_JOINS, ..Query::all(schema.render(&sql)) };
    Ok(Some(Shared { query, tables }))
}

/// sql/system.sql with its placeholders filled, as (name, text).
fn system_sql(fill: &[(&str, &str)]) -> String {
    fill.iter().fold(SYSTEM_SQL.to_string(), |sql, (name, text)| sql.replace(&format!("@{name}@"), text))
}

/// The shared statement's loan and payment rules alone, for a set of loans
/// (an incremental run): `inst`, `loan` and `payment` as for [`shared`],
/// over those loans and "pay_set", their payments; each test of a loan id
/// against the set still to fill in (<loan>). None where payments'
/// schedule_id is not unique.
pub fn for_loans(schema: &Schema, inst: &str, loan: &str, payment: &str) -> Result<Option<String>> {
    if !schema.is_unique(PAYMENTS, &["schedule_id"])? {
        return Ok(None);
    }
    let rest = format!(
        "{}{}SELECT * FROM ({loan}) f\nUNION ALL\nSELECT * FROM ({payment}) f",
        suspect_loans("pm", &["flagged".into()]),
        pm_paid()
    );
    let sql = system_sql(&[
        (
            "pay_set",
            "pay_set AS MATERIALIZED (SELECT p.* FROM @s@.payments_payment p WHERE p.loan_application_id @loan@), ",
        ),
        ("payments", "pay_set"),
        ("loans", "(SELECT id, activated_at FROM @s@.loans_loanapplication WHERE id @loan@)"),
        ("inst", inst),
        ("joins", ""),
        ("counts", ""),
        ("rest", &rest),
    ]);
    Ok(Some(schema.render(&sql)))
}

/// Foreign keys that are NOT VALID, and expected ones that are missing.
fn unvalidated(schema: &Schema, fks: &[ForeignKey]) -> Result<Option<Query>> {
    let mut rows = Vec::new();
    for fk in fks.iter().filter(|f| !f.validated) {
        let table = Table::open(Some(Regclass(fk.child)), "table")?;
        rows.push(format!(
            "({}, {}, 'NOT VALID')",
            quote_literal(&format!("Foreign key {} on {} is NOT VALID", fk.name, table.name)),
            quote_literal(&fk.name)
        ));
    }
    for (child, column, parent) in EXPECTED_FKS {
        let (Some(c), Some(p)) = (schema.table(child), schema.table(parent)) else { continue };
        let present = fks.iter().any(|f| f.child == c && f.parent == p && f.columns == [column]);
        if !present {
            rows.push(format!(
                "({}, NULL, 'missing')",
                quote_literal(&format!("Expected foreign key {child}.{column} -> {parent} is missing"))
            ));
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(Query::all(format!(
        "SELECT 'warning', 'foreign_key_not_validated', 'constraint', NULL::bigint, v.message, \
                jsonb_build_object('constraint', v.conname, 'state', v.state) \
           FROM (VALUES {}) v(message, conname, state)",
        rows.join(", ")
    ))))
}

/// The system section's own queries (the families' all-rows queries follow them).
pub fn structural(schema: &Schema, fks: &[ForeignKey], instead: Vec<(pg_sys::Oid, Query)>) -> Result<Vec<Query>> {
    let mut queries = violations(schema, fks, instead)?;
    queries.extend(unvalidated(schema, fks)?);
    if !schema.is_unique(SCHEDULE, &["loan_application_id", "sequence"])? {
        queries.push(Query::all(schema.render(DUPLICATE_SEQUENCE_SQL)));
    }
    queries.push(Query::all(VERSIONING_SQL.into()));
    Ok(queries)
}

/// Orphaned payments, approved or active loans without a schedule, duplicate
/// VINs and disabled versioning triggers.
pub fn quick(schema: &Schema) -> Vec<Query> {
    let mut queries: Vec<Query> = orphans(schema, &ORPHANS[..1]).into_iter().collect();
    // Payments without an installment: a merge of the two unique indexes
    // (index-only scans) took 0.32 s on 1.3 million payments, the planner's
    // parallel hash anti-join over 2 million installments 0.65 s.
    queries.extend(
        orphans(schema, &ORPHANS[1..2]).map(|q| Query {
            settings: &[(c"enable_hashjoin", c"off"), (c"max_parallel_workers_per_gather", c"0")],
            ..q
        }),
    );
    queries.push(Query::all(
        // The loan family's schedule_missing rule, through the schedule index.
        schema.render(
            "SELECT 'warning', 'schedule_missing', 'loan', l.id, 'Loan has no payment schedule', \
                    jsonb_build_object('status', l.status) \
               FROM @s@.loans_loanapplication l \
              WHERE (l.status = 'active' OR (l.status = 'approved' \
                     AND l.approved_by_id IS NOT NULL AND l.second_approval_by_id IS NOT NULL)) \
                AND NOT EXISTS (SELECT FROM @s@.loans_paymentschedule s WHERE s.loan_application_id = l.id) \
              ORDER BY l.id",
        ),
    ));
    let inventory = Family::Inventory.query(schema, None);
    queries.push(Query::all(format!("SELECT * FROM ({}) f WHERE f.code = 'duplicate_vin'", inventory.sql)));
    queries.push(Query::all(VERSIONING_SQL.into()));
    queries
}
