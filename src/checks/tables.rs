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
    /// columns of the table rules out duplicates among them. Kept per backend
    /// until the table's relcache entry is invalidated (an index created or
    /// dropped invalidates it), so a single-entity check reads no catalog.
    pub fn is_unique(&self, table: &str, columns: &'static [&'static str]) -> Result<bool> {
        let Some(oid) = self.table(table) else { return Ok(false) };
        let hit = UNIQUE.with_borrow(|v| v.iter().find(|(r, c, _)| *r == oid && *c == columns).map(|e| e.2));
        if let Some(unique) = hit {
            return Ok(unique);
        }
        // No borrow held here: the catalog read may process invalidations.
        let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let unique = crate::catalog::select_one::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_index i \
              WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indimmediate \
                AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnatts = cardinality($2) \
                AND ARRAY(SELECT a.attname::text COLLATE \"C\" FROM pg_catalog.pg_attribute a \
                           WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) ORDER BY 1) \
                    = ARRAY(SELECT c COLLATE \"C\" FROM unnest($2::text[]) c ORDER BY 1))",
            &[oid.into(), names.into()],
        )?
        .unwrap_or(false);
        UNIQUE.with_borrow_mut(|v| v.push((oid, columns, unique)));
        Ok(unique)
    }

    /// A query text with `@s@` replaced by this schema.
    pub fn render(&self, sql: &str) -> String {
        sql.replace("@s@", &self.quoted)
    }
}

thread_local! {
    /// [`Schema::is_unique`]'s answers: (table, columns, unique).
    static UNIQUE: RefCell<Vec<(pg_sys::Oid, &'static [&'static str], bool)>> = const { RefCell::new(Vec::new()) };
}

/// # Safety
/// Called by PostgreSQL's relcache invalidation machinery with the arguments it documents.
#[pg_guard]
unsafe extern "C-unwind" fn invalidate(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    UNIQUE.with_borrow_mut(|v| v.retain(|(r, _, _)| relid != pg_sys::InvalidOid && *r != relid));
}

pub fn register_callbacks() {
    // SAFETY: called once from _PG_init, with a function that lives as long as the library.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(invalidate), pg_sys::Datum::from(0)) };
}

/// A name as a C string (a NUL, which no catalog name holds, finds nothing).
fn c_name(name: &str) -> Option<CString> {
    CString::new(name).ok()
}
