//! Where the Motofinai tables are: the `motofinai.tables_schema` setting, and
//! a clear error naming any table a check needs but cannot find.

use crate::catalog::quote_ident;
use crate::errors::{sqlstate, DbError, Result};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::ffi::CString;

static TABLES_SCHEMA: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"public"));

pub fn register_gucs() {
    GucRegistry::define_string_guc(
        c"motofinai.tables_schema",
        c"Schema that holds the Motofinai tables the consistency checks read.",
        c"Defaults to public, where Django creates them.",
        &TABLES_SCHEMA,
        GucContext::Userset,
        GucFlags::default(),
    );
}

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
        let name = TABLES_SCHEMA
            .get()
            .map(|c| c.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "public".into());
        let cname = CString::new(name.clone()).expect("GUC values have no NUL");
        let oid = unsafe { pg_sys::get_namespace_oid(cname.as_ptr(), true) };
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
        let cname = CString::new(table).expect("table names have no NUL");
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

    /// A query text with `@s@` replaced by this schema.
    pub fn render(&self, sql: &str) -> String {
        sql.replace("@s@", &self.quoted)
    }
}
