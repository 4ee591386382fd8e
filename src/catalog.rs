//! Relations as our functions receive them: a `regclass` argument resolved to
//! quoted names, and the facts about a table that the row helpers need.

use crate::errors::{spi_error, sqlstate, DbError, Result};
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use std::ffi::CStr;

/// A `regclass` argument, kept as a bare OID: the relation is looked up (and
/// a missing one reported cleanly) by [`Table::open`], not by the call itself.
#[derive(Debug, Clone, Copy)]
pub struct Regclass(pub pg_sys::Oid);

impl FromDatum for Regclass {
    /// # Safety
    /// A regclass datum (an OID by value); nothing is dereferenced.
    unsafe fn from_polymorphic_datum(d: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        (!is_null).then(|| Regclass(pg_sys::Oid::from(d.value() as u32)))
    }
}

impl IntoDatum for Regclass {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(pg_sys::Datum::from(self.0))
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::REGCLASSOID
    }
}

// SAFETY: a regclass argument is an OID by value, as FromDatum reads it.
unsafe impl<'fcx> ArgAbi<'fcx> for Regclass {
    /// # Safety
    /// pgrx calls it for a non-NULL argument of a strict function.
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        // SAFETY: see above; strict functions never see NULL here.
        unsafe { arg.unbox_arg_using_from_datum().expect("regclass argument must not be NULL") }
    }
}

// SAFETY: it is exactly SQL's regclass.
unsafe impl SqlTranslatable for Regclass {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(Regclass);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: std::result::Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("regclass"));
    const RETURN_SQL: std::result::Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("regclass")));
}

/// A table that exists, with its names resolved and quoted once.
#[derive(Debug, Clone)]
pub struct Table {
    pub oid: pg_sys::Oid,
    pub schema: String,
    pub name: String,
    /// `schema.table`, each part quoted as needed: safe to splice into SQL.
    pub qualified: String,
    pub relkind: u8,
}

impl Table {
    pub fn open(tbl: Option<Regclass>, arg_name: &str) -> Result<Table> {
        let oid = tbl.ok_or_else(|| crate::errors::null_argument(arg_name))?.0;
        // SAFETY: syscache lookups by OID; NULL (no such relation) is handled.
        let name = unsafe { cstr_opt(pg_sys::get_rel_name(oid)) };
        let Some(name) = name else {
            return Err(DbError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", u32::from(oid)),
            ));
        };
        // SAFETY: the relation exists (above); NULL is handled.
        let schema =
            unsafe { cstr_opt(pg_sys::get_namespace_name(pg_sys::get_rel_namespace(oid))) }.unwrap_or_default();
        // SAFETY: a syscache lookup of an existing relation.
        let relkind = unsafe { pg_sys::get_rel_relkind(oid) } as u8;
        let qualified = format!("{}.{}", quote_ident(&schema), quote_ident(&name));
        Ok(Table { oid, schema, name, qualified, relkind })
    }

    /// Ordinary or partitioned table, the kinds versioning applies to.
    pub fn require_table(self) -> Result<Table> {
        if self.relkind == pg_sys::RELKIND_RELATION || self.relkind == pg_sys::RELKIND_PARTITIONED_TABLE {
            Ok(self)
        } else {
            Err(DbError::new(sqlstate::WRONG_OBJECT_TYPE, format!("\"{}\" is not a table", self.name))
                .hint("Versioning applies to ordinary and partitioned tables.")
                .table(&self.schema, &self.name))
        }
    }

    /// The column's type, or `None` when the table has no such (live) column.
    pub fn column_type(&self, column: &str) -> Result<Option<pg_sys::Oid>> {
        Ok(crate::pg::tuple::column_type_mod(self.oid, column).map(|(ty, _, _)| ty))
    }

    /// The single integer primary-key column the row helpers address rows by.
    pub fn integer_primary_key(&self) -> Result<String> {
        let cols: Vec<(String, pg_sys::Oid)> = Spi::connect(|c| {
            c.select(
                "SELECT a.attname::text, a.atttypid FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = $1 AND i.indisprimary",
                None,
                &[self.oid.into()],
            )?
            .map(|row| Ok((row.get::<String>(1)?.unwrap_or_default(), row.get::<pg_sys::Oid>(2)?.unwrap_or_default())))
            .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .map_err(spi_error)?;
        match cols.as_slice() {
            [(name, ty)] if is_integer_type(*ty) => Ok(name.clone()),
            _ => Err(DbError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!("table \"{}\" has no single-column integer primary key", self.name),
            )
            .hint("The row helpers address rows by a bigint, integer or smallint primary key.")
            .table(&self.schema, &self.name)),
        }
    }
}

pub fn is_integer_type(ty: pg_sys::Oid) -> bool {
    ty == pg_sys::INT2OID || ty == pg_sys::INT4OID || ty == pg_sys::INT8OID
}

pub fn quote_ident(ident: &str) -> String {
    pgrx::spi::quote_identifier(ident)
}

pub fn quote_literal(s: &str) -> String {
    pgrx::spi::quote_literal(s)
}

/// The first column of the first row of a read-only query (None: no row or
/// NULL). Read-only SPI, so it can run in a parallel worker and on a standby.
pub fn select_one<T: FromDatum + IntoDatum>(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Result<Option<T>> {
    Spi::connect(|c| c.select(sql, Some(1), args)?.first().get_one::<T>()).or_else(no_row).map_err(spi_error)
}

/// A query that found no row answers NULLs (`None`s), not an error.
pub fn no_row<T: Default>(e: pgrx::spi::Error) -> std::result::Result<T, pgrx::spi::Error> {
    match e {
        pgrx::spi::Error::InvalidPosition => Ok(T::default()),
        e => Err(e),
    }
}

/// # Safety
/// `p` is NULL or a valid C string.
unsafe fn cstr_opt(p: *const std::ffi::c_char) -> Option<String> {
    // SAFETY: the caller's promise.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// A jsonb value passed through untouched: pgrx's `JsonB` converts through
/// serde_json, which refuses nesting deeper than 128 levels (an internal
/// error for a value PostgreSQL itself accepts). Row helpers only hand
/// jsonb to SQL and back, so they never need it as a Rust value.
/// (Copy: it is only a pointer, valid for the call.)
#[derive(Clone, Copy)]
pub struct RawJsonb(pg_sys::Datum);

impl RawJsonb {
    /// A jsonb from its text form (SQL's `::text`), in the current memory context.
    pub fn from_text(text: &str) -> Result<RawJsonb> {
        let text = std::ffi::CString::new(text)
            .map_err(|e| DbError::new(sqlstate::INVALID_TEXT_REPRESENTATION, e.to_string()))?;
        // SAFETY: jsonb_in takes a C string (which outlives the call) and
        // returns a jsonb datum in the current memory context, or raises.
        let datum = unsafe { pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[text.as_c_str().into_datum()]) };
        datum.map(RawJsonb).ok_or_else(|| DbError::new(sqlstate::INVALID_TEXT_REPRESENTATION, "invalid jsonb"))
    }
}

impl FromDatum for RawJsonb {
    /// # Safety
    /// A jsonb datum, kept as it is for the duration of the call.
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<RawJsonb> {
        (!is_null).then_some(RawJsonb(datum))
    }
}

impl IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: the argument is a jsonb datum, kept as it is.
unsafe impl<'fcx> ArgAbi<'fcx> for RawJsonb {
    /// # Safety
    /// pgrx calls it for a non-NULL argument of a strict function.
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        // SAFETY: see above; strict functions never see NULL here.
        unsafe { arg.unbox_arg_using_from_datum().expect("jsonb argument must not be NULL") }
    }
}

// SAFETY: the datum returned is a valid jsonb of the current call.
unsafe impl pgrx::callconv::BoxRet for RawJsonb {
    /// # Safety
    /// `self` holds a jsonb datum valid in the caller's memory context.
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        // SAFETY: see above.
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

// SAFETY: it is exactly SQL's jsonb.
unsafe impl SqlTranslatable for RawJsonb {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(RawJsonb);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: std::result::Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: std::result::Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}
