//! Where the Motofinai tables are: the `motofinai.tables_schema` setting, and
//! a clear error naming any table a check needs but cannot find.

use crate::catalog::quote_ident;
use crate::errors::{sqlstate, DbError, Result};
use pgrx::{pg_guard, pg_sys};
use std::cell::RefCell;
use std::ffi::CString;

pub const LOANS: &str = "loans_loanapplication";
pub const SCHEDULE: &str = "loans_paymentschedule";
pub const PAYMENTS: &str = "payments_payment";
pub const MOTORS: &str = "inventory_motor";
pub const STOCK: &str = "inventory_stock";
pub const USERS: &str = "users_user";
pub const REPOSSESSIONS: &str = "repossession_repossessioncase";
pub const TERMS: &str = "loans_financingterm";
pub const RECEIVING: &str = "inventory_motorreceiving";

/// Every table of the Motofinai schema, in the order reports list them.
pub const ALL: [&str; 9] = [LOANS, SCHEDULE, PAYMENTS, MOTORS, STOCK, USERS, REPOSSESSIONS, TERMS, RECEIVING];

/// The resolved schema: its name, quoted for SQL, and its OID.
pub struct Schema {
    pub name: String,
    pub quoted: String,
    pub oid: pg_sys::Oid,
}

impl Schema {
    pub fn current() -> Result<Schema> {
        let name = crate::gucs::string(&crate::gucs::TABLES_SCHEMA)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "public".into());
        let oid = c_name(&name).map_or(pg_sys::InvalidOid, |cname| {
            // SAFETY: a syscache lookup by a C string; missing_ok, so no error.
            unsafe { pg_sys::get_namespace_oid(cname.as_ptr(), true) }
        });
        if oid == pg_sys::InvalidOid {
            return Err(DbError::new(
                sqlstate::INVALID_SCHEMA_NAME,
                format!("schema \"{name}\" of the Motofinai tables does not exist"),
            )
            .hint("Set motofinai.tables_schema to the schema that holds the Motofinai tables."));
        }
        Ok(Schema { quoted: quote_ident(&name), name, oid })
    }

    /// The table's OID in this schema, if it exists.
    pub fn table(&self, table: &str) -> Option<pg_sys::Oid> {
        let cname = c_name(table)?;
        // SAFETY: a syscache lookup by a C string and a namespace OID; no error.
        let oid = unsafe { pg_sys::get_relname_relid(cname.as_ptr(), self.oid) };
        (oid != pg_sys::InvalidOid).then_some(oid)
    }

    /// Fail, naming the first missing one, unless every table exists.
    pub fn require(&self, tables: &[&str]) -> Result<()> {
        match tables.iter().find(|t| self.table(t).is_none()) {
            None => Ok(()),
            Some(t) => Err(DbError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("Motofinai table \"{}.{}\" does not exist", self.name, t),
            )
            .hint("Load the Motofinai schema, or set motofinai.tables_schema to the schema that holds it.")
            .table(&self.name, t)),
        }
    }

    /// Whether a valid, immediate, non-partial unique index on exactly these
    /// columns of the table rules out duplicates among them.
    pub fn is_unique(&self, table: &str, columns: &'static [&'static str]) -> Result<bool> {
        let Some(oid) = self.table(table) else { return Ok(false) };
        cached_flag(oid, Question::Unique(columns), || {
            let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            crate::catalog::select_one::<bool>(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_index i \
                  WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indimmediate \
                    AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnatts = cardinality($2) \
                    AND ARRAY(SELECT a.attname::text COLLATE \"C\" FROM pg_catalog.pg_attribute a \
                               WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) ORDER BY 1) \
                        = ARRAY(SELECT c COLLATE \"C\" FROM unnest($2::text[]) c ORDER BY 1))",
                &[oid.into(), names.into()],
            )
        })
    }

    /// Whether `column` is a `numeric(p, 2)` with p <= 18: every value is
    /// whole cents and fits an `int8` of them (what `motofinai.cents_sum` adds).
    pub fn holds_cents(&self, table: &str, column: &'static str) -> Result<bool> {
        let Some(oid) = self.table(table) else { return Ok(false) };
        cached_flag(oid, Question::Cents(column), || {
            // numeric's typmod: ((precision << 16) | scale) + VARHDRSZ.
            Ok(crate::pg::tuple::column_type_mod(oid, column).map(|(ty, typmod, _)| {
                let m = typmod - pg_sys::VARHDRSZ as i32;
                ty == pg_sys::NUMERICOID && m >= 0 && m & 0x7ff == 2 && m >> 16 <= 18
            }))
        })
    }

    /// Whether `motofinai.installment_totals` reads the installments and
    /// their payments as loan_inst.sql does: the amounts are whole cents
    /// ([`Schema::holds_cents`]), the status compares byte for byte, and the
    /// other columns are the aggregate's types or cast to them implicitly
    /// without a change of value (checks/totals.rs).
    pub fn fits_totals(&self) -> bool {
        const INTS: &[pg_sys::Oid] = &[pg_sys::INT2OID, pg_sys::INT4OID, pg_sys::INT8OID];
        const SCHEDULE_COLUMNS: [(&str, &[pg_sys::Oid]); 4] = [
            ("status", &[pg_sys::TEXTOID, pg_sys::VARCHAROID]),
            ("due_date", &[pg_sys::DATEOID]),
            ("sequence", &[pg_sys::INT2OID, pg_sys::INT4OID]),
            ("loan_application_id", INTS),
        ];
        const PAYMENT_COLUMNS: [(&str, &[pg_sys::Oid]); 2] =
            [("loan_application_id", INTS), ("payment_date", &[pg_sys::DATEOID])];
        let typed = |table: &str, columns: &[(&'static str, &[pg_sys::Oid])]| {
            let Some(oid) = self.table(table) else { return false };
            cached_flag(oid, Question::Totals, || {
                Ok(Some(columns.iter().all(|(column, types)| {
                    crate::pg::tuple::column_type_mod(oid, column)
                        .is_some_and(|(ty, _, coll)| types.contains(&ty) && crate::pg::tuple::deterministic(coll))
                })))
            })
            .unwrap_or(false)
        };
        self.amounts_in_cents() && typed(SCHEDULE, &SCHEDULE_COLUMNS) && typed(PAYMENTS, &PAYMENT_COLUMNS)
    }

    /// Whether a btree index serves lookups of `column`'s non-blank values
    /// (see [`btree_leads_with`], blank-filtered indexes included).
    pub fn has_lookup_index(&self, table: &str, column: &str) -> Result<bool> {
        let Some(oid) = self.table(table) else { return Ok(false) };
        btree_leads_with(oid, column, true)
    }

    /// A hash index on `column` holding every non-blank value (no predicate,
    /// or create_check_indexes()'s), for `motofinai.keys_indexed_twice`.
    pub fn hash_index(&self, table: &str, column: &str) -> Result<Option<pg_sys::Oid>> {
        let Some(oid) = self.table(table) else { return Ok(None) };
        leading_index(oid, column, true, "hash")
    }

    /// A query text with `@s@` replaced by this schema, and `@sum@` by the
    /// aggregate that sums amounts ([`Schema::amount_sum`]).
    pub fn render(&self, sql: &str) -> String {
        let sql = sql.replace("@s@", &self.quoted);
        if sql.contains("@sum@") {
            sql.replace("@sum@", self.amount_sum())
        } else {
            sql
        }
    }

    /// `motofinai.cents_sum` where the amounts the checks sum are all whole
    /// cents ([`Schema::amounts_in_cents`]), else `sum` (same result; see
    /// checks/cents.rs).
    fn amount_sum(&self) -> &'static str {
        if self.amounts_in_cents() {
            "motofinai.cents_sum"
        } else {
            "pg_catalog.sum"
        }
    }

    /// Whether the amounts the checks sum (installments' principal and
    /// total, payments' amount) all hold whole cents ([`Schema::holds_cents`]).
    /// An unreadable catalog: no.
    fn amounts_in_cents(&self) -> bool {
        let amounts = [(SCHEDULE, "principal_amount"), (SCHEDULE, "total_amount"), (PAYMENTS, "amount")];
        amounts.iter().all(|(t, c)| self.holds_cents(t, c).unwrap_or(false))
    }
}

/// Whether a valid btree index of table `oid` leads with `column` and has no
/// predicate, or, where `blank_filtered`, the one that
/// `motofinai.create_check_indexes()` gives it (`btrim(column) <> ''`): a
/// query can then read the column's values in order, or look one up,
/// through it (testing that predicate too where the index has it).
pub fn btree_leads_with(oid: pg_sys::Oid, column: &str, blank_filtered: bool) -> Result<bool> {
    Ok(leading_index(oid, column, blank_filtered, "btree")?.is_some())
}

/// A valid index of table `oid` and access method `am` (btree, hash) that
/// leads with `column`, as [`btree_leads_with`] asks.
fn leading_index(
    oid: pg_sys::Oid,
    column: &str,
    blank_filtered: bool,
    am: &'static str,
) -> Result<Option<pg_sys::Oid>> {
    let index = cached(oid, Question::Leads(column.to_string(), blank_filtered, am), || {
        // The predicate as pg_get_expr prints it, for a text column and for
        // a varchar one (cast to text).
        crate::catalog::select_one::<pg_sys::Oid>(
            "SELECT i.indexrelid FROM pg_catalog.pg_index i \
               JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
               JOIN pg_catalog.pg_am a ON a.oid = c.relam \
               JOIN pg_catalog.pg_attribute t ON t.attrelid = i.indrelid AND t.attnum = i.indkey[0] \
              WHERE i.indrelid = $1 AND i.indisvalid AND a.amname = $4 AND t.attname = $2 \
                AND (i.indpred IS NULL OR $3 AND pg_catalog.pg_get_expr(i.indpred, i.indrelid) IN \
                     (pg_catalog.format('(btrim(%s) <> ''''::text)', pg_catalog.quote_ident($2)), \
                      pg_catalog.format('(btrim((%s)::text) <> ''''::text)', pg_catalog.quote_ident($2)))) \
              ORDER BY i.indexrelid LIMIT 1",
            &[oid.into(), column.into(), blank_filtered.into(), am.into()],
        )
        .map(|i| i.map(|i| i.to_u32()))
    })?;
    Ok((index != 0).then(|| pg_sys::Oid::from(index)))
}

/// An answer about table `oid`'s indexes or columns (a flag, or an index's
/// OID; 0: no), kept per backend until the table's relcache entry is
/// invalidated (an index created or dropped invalidates it), so a
/// single-entity check reads no catalog.
fn cached(oid: pg_sys::Oid, question: Question, ask: impl FnOnce() -> Result<Option<u32>>) -> Result<u32> {
    let hit = ANSWERS.with_borrow(|v| v.iter().find(|(r, q, _)| *r == oid && *q == question).map(|e| e.2));
    if let Some(answer) = hit {
        return Ok(answer);
    }
    // No borrow held here: the catalog read may process invalidations.
    let answer = ask()?.unwrap_or(0);
    ANSWERS.with_borrow_mut(|v| v.push((oid, question, answer)));
    Ok(answer)
}

/// [`cached`], for a yes or no.
fn cached_flag(oid: pg_sys::Oid, question: Question, ask: impl FnOnce() -> Result<Option<bool>>) -> Result<bool> {
    Ok(cached(oid, question, || Ok(ask()?.map(u32::from)))? != 0)
}

/// What [`cached`] answers about a table's indexes.
#[derive(PartialEq, Eq)]
enum Question {
    /// [`Schema::is_unique`] of these columns.
    Unique(&'static [&'static str]),
    /// [`leading_index`] of this column, blank-filtered indexes or not, of
    /// this access method.
    Leads(String, bool, &'static str),
    /// [`Schema::holds_cents`] of this column (a column's type changes
    /// invalidate the relcache too).
    Cents(&'static str),
    /// [`Schema::fits_totals`]' question of this table's columns.
    Totals,
}

thread_local! {
    /// [`cached`]'s answers: (table, question, answer).
    static ANSWERS: RefCell<Vec<(pg_sys::Oid, Question, u32)>> = const { RefCell::new(Vec::new()) };
}

/// # Safety
/// Called by PostgreSQL's relcache invalidation machinery with the arguments it documents.
#[pg_guard]
unsafe extern "C-unwind" fn invalidate(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    ANSWERS.with_borrow_mut(|v| v.retain(|(r, _, _)| relid != pg_sys::InvalidOid && *r != relid));
}

pub fn register_callbacks() {
    // SAFETY: called once from _PG_init, with a function that lives as long as the library.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(invalidate), pg_sys::Datum::from(0)) };
}

/// A name as a C string (a NUL, which no catalog name holds, finds nothing).
fn c_name(name: &str) -> Option<CString> {
    CString::new(name).ok()
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::spi::Spi;

    /// Run `sql` in schema `lk`, then ask whether an index serves lookups of
    /// `table`'s reference (each answer after a change is a fresh one: the
    /// index's creation or drop invalidated the cached one).
    fn ask(sql: &str, table: &str) -> bool {
        Spi::run(sql).unwrap();
        Schema::current().unwrap().has_lookup_index(table, "reference").unwrap()
    }

    #[pgrx::pg_test]
    fn a_lookup_index_leads_with_the_column_and_holds_every_non_blank_value() {
        Spi::run("CREATE SCHEMA lk").unwrap();
        Spi::run("CREATE TABLE lk.v (id bigint, reference varchar(20), note text)").unwrap();
        Spi::run("CREATE TABLE lk.t (id bigint, reference text)").unwrap();
        Spi::run("SET LOCAL motofinai.tables_schema = lk").unwrap();
        assert!(!ask("SELECT", "v"), "no index");
        assert!(!ask("CREATE INDEX v_note ON lk.v (note, reference)", "v"), "another column first");
        assert!(!ask("CREATE INDEX v_hash ON lk.v USING hash (reference)", "v"), "not a btree");
        assert!(!ask("CREATE INDEX v_expr ON lk.v (upper(reference))", "v"), "an expression");
        assert!(!ask("CREATE INDEX v_some ON lk.v (reference) WHERE reference <> 'x'", "v"), "another predicate");
        assert!(ask("CREATE INDEX v_blank ON lk.v (reference) WHERE btrim(reference) <> ''", "v"), "varchar");
        assert!(!ask("DROP INDEX lk.v_blank", "v"), "dropped");
        assert!(ask("CREATE INDEX v_all ON lk.v (reference, id)", "v"), "no predicate");
        assert!(!ask("SELECT", "t"), "another table");
        assert!(ask("CREATE INDEX t_blank ON lk.t (reference) WHERE btrim(reference) <> ''", "t"), "text");
        assert!(!ask("SELECT", "missing"), "no such table");
    }
}
