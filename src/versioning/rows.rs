//! Row helpers: lock a row at an expected version, update or delete it only
//! if its version still matches. They run as the caller (SECURITY INVOKER),
//! so privileges and row-level security apply exactly as to the caller's own SQL.

use super::{conflict_error, registered_options, Options, Protocol};
use crate::catalog::{quote_ident, RawJsonb, Regclass, Table};
use crate::errors::{finish, null_argument, spi_error, sqlstate, DbError, Result};
use pgrx::prelude::*;

/// A versioned table addressed by its integer primary key, with quoted names.
struct Target {
    table: Table,
    options: Options,
    pk: String,
}

impl Target {
    fn open(tbl: Option<Regclass>) -> Result<Target> {
        let table = Table::open(tbl, "tbl")?;
        let options = registered_options(&table)?;
        let pk = table.integer_primary_key()?;
        Ok(Target { table, options, pk })
    }

    fn version(&self) -> String {
        quote_ident(&self.options.version_column)
    }

    /// The current version of a row, or the "object deleted" error.
    fn current(&self, id: i64) -> Result<(i64, String)> {
        let (version, modified) = Spi::get_two_with_args::<i64, String>(
            &format!(
                "SELECT {v}::bigint, {m}::text FROM {t} WHERE {pk} = $1",
                v = self.version(),
                m = quote_ident(&self.options.modified_column),
                t = self.table.qualified,
                pk = quote_ident(&self.pk),
            ),
            &[id.into()],
        )
        .or_else(crate::catalog::no_row)
        .map_err(spi_error)?;
        match version {
            Some(v) => Ok((v, modified.unwrap_or_else(|| "NULL".into()))),
            None => Err(self.deleted(id)),
        }
    }

    fn deleted(&self, id: i64) -> DbError {
        DbError::new(sqlstate::OBJECT_DELETED, format!("{} row {id} no longer exists", self.table.name))
            .detail(format!("Key ({})=({id}) was not found; another transaction may have deleted it.", self.pk))
            .hint("Reload the object before changing it.")
            .table(&self.table.schema, &self.table.name)
    }

    fn conflict(&self, id: i64, expected: i64, found: i64, modified: &str) -> DbError {
        conflict_error(
            &self.table.schema,
            &self.table.name,
            &self.options.version_column,
            &format!("Key ({})=({id})", self.pk),
            &id.to_string(),
            expected,
            found,
            modified,
        )
    }

    /// A statement matched no row although it was stated at `expected`: say why.
    fn explain_miss(&self, id: i64, expected: i64) -> DbError {
        match self.current(id) {
            Err(e) => e,
            Ok((found, modified)) if found != expected => self.conflict(id, expected, found, &modified),
            Ok(_) => DbError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!("{} row {id} is not writable by the current user", self.table.name),
            )
            .detail("The row is visible but a row-level security policy excludes it from this command.")
            .table(&self.table.schema, &self.table.name),
        }
    }
}

fn required<T>(v: Option<T>, name: &str) -> Result<T> {
    v.ok_or_else(|| null_argument(name))
}

/// Lock a row for update and check it is still at the version the caller read.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn get_for_update(
    tbl: Option<Regclass>,
    id: Option<i64>,
    expected_version: default!(Option<i64>, "NULL"),
    nowait: default!(Option<bool>, false),
) -> RawJsonb {
    finish(|| lock_row(tbl, id, expected_version, nowait).map(|(row, _)| row))
}

pub(crate) fn lock_row(
    tbl: Option<Regclass>,
    id: Option<i64>,
    expected: Option<i64>,
    nowait: Option<bool>,
) -> Result<(RawJsonb, Option<i64>)> {
    crate::errors::require_writable("get_for_update")?;
    let target = Target::open(tbl)?;
    let id = required(id, "id")?;
    let nowait = required(nowait, "nowait")?;
    let (row, version, modified) = count_lock_timeouts(|| {
        Spi::get_three_with_args::<String, i64, String>(
            &format!(
                "SELECT to_jsonb(r.*)::text, r.{v}::bigint, r.{m}::text FROM {t} AS r WHERE r.{pk} = $1 FOR UPDATE{nw}",
                v = target.version(),
                m = quote_ident(&target.options.modified_column),
                t = target.table.qualified,
                pk = quote_ident(&target.pk),
                nw = if nowait { " NOWAIT" } else { "" },
            ),
            &[id.into()],
        )
    })
    .or_else(crate::catalog::no_row)
    .map_err(spi_error)?;
    let Some(row) = row else { return Err(target.deleted(id)) };
    if let (Some(expected), Some(found)) = (expected, version) {
        if expected != found {
            return Err(target.conflict(id, expected, found, modified.as_deref().unwrap_or("NULL")));
        }
    }
    Ok((RawJsonb::from_text(&row)?, version))
}

/// Run `f`, counting a lock-timeout failure (NOWAIT or lock_timeout, 55P03)
/// in the monitoring statistics before it propagates.
fn count_lock_timeouts<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> T {
    PgTryBuilder::new(f)
        .catch_when(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE, |e| {
            crate::monitoring::store::record_lock_timeout();
            e.rethrow()
        })
        .execute()
}

/// Update the named columns of one row if it is still at `current_version`.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn safe_update_with_version(
    tbl: Option<Regclass>,
    id: Option<i64>,
    current_version: Option<i64>,
    update_fields: Option<RawJsonb>,
) -> RawJsonb {
    finish(|| update_row(tbl, id, current_version, update_fields))
}

pub(crate) fn update_row(
    tbl: Option<Regclass>,
    id: Option<i64>,
    current: Option<i64>,
    fields: Option<RawJsonb>,
) -> Result<RawJsonb> {
    crate::errors::require_writable("safe_update_with_version")?;
    let target = Target::open(tbl)?;
    let id = required(id, "id")?;
    let current = required(current, "current_version")?;
    let fields = required(fields, "update_fields")?;
    // The keys are all we read of it (SQL fills the row from the value).
    let keys = Spi::get_one_with_args::<Vec<String>>(
        "SELECT CASE WHEN pg_catalog.jsonb_typeof($1) = 'object' \
                THEN ARRAY(SELECT pg_catalog.jsonb_object_keys($1)) END",
        &[fields.into()],
    )
    .map_err(spi_error)?;
    let Some(keys) = keys else {
        return Err(DbError::new(sqlstate::INVALID_PARAMETER_VALUE, "update_fields must be a JSON object"));
    };
    if keys.is_empty() {
        return Err(DbError::new(sqlstate::INVALID_PARAMETER_VALUE, "update_fields must name at least one column"));
    }
    let mut sets = Vec::with_capacity(keys.len() + 1);
    for column in &keys {
        check_updatable(&target, column)?;
        let c = quote_ident(column);
        sets.push(format!("{c} = f.{c}"));
    }
    let stated = match target.options.protocol {
        Protocol::Expected => "$3",
        Protocol::Increment => "$3 + 1",
    };
    sets.push(format!("{} = {stated}", target.version()));
    // One statement: the WHERE re-checks the version after any lock wait
    // (EvalPlanQual), so a concurrent writer makes it match nothing.
    let sql = format!(
        "UPDATE {t} AS r SET {sets} FROM jsonb_populate_record(NULL::{t}, $1) AS f \
         WHERE r.{pk} = $2 AND r.{v} = $3 RETURNING to_jsonb(r.*)::text",
        t = target.table.qualified,
        sets = sets.join(", "),
        pk = quote_ident(&target.pk),
        v = target.version(),
    );
    let row = Spi::get_one_with_args::<String>(&sql, &[fields.into(), id.into(), current.into()])
        .or_else(crate::catalog::no_row)
        .map_err(spi_error)?;
    RawJsonb::from_text(&row.ok_or_else(|| target.explain_miss(id, current))?)
}

/// Every key must be a live, writable column other than the key and the two versioning columns.
fn check_updatable(target: &Target, column: &str) -> Result<()> {
    let t = &target.table;
    let forbidden = |why: &str| {
        Err(DbError::new(sqlstate::GENERATED_ALWAYS, format!("column \"{column}\" cannot be updated: {why}"))
            .table(&t.schema, &t.name)
            .column(column))
    };
    if column == target.pk {
        return forbidden("it is the primary key");
    }
    if column == target.options.version_column || column == target.options.modified_column {
        return forbidden("it is maintained by versioning");
    }
    let generated = Spi::get_one_with_args::<bool>(
        "SELECT attgenerated <> '' FROM pg_catalog.pg_attribute \
         WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped",
        &[t.oid.into(), column.into()],
    )
    .or_else(crate::catalog::no_row)
    .map_err(spi_error)?;
    match generated {
        None => Err(DbError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{column}\" of relation \"{}\" does not exist", t.name),
        )
        .table(&t.schema, &t.name)
        .column(column)),
        Some(true) => forbidden("it is a generated column"),
        Some(false) => Ok(()),
    }
}

/// Delete one row if it is still at `current_version`. False when the row is
/// already gone; the conflict error when it changed.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn safe_delete_with_version(tbl: Option<Regclass>, id: Option<i64>, current_version: Option<i64>) -> bool {
    finish(|| delete_row(tbl, id, current_version))
}

fn delete_row(tbl: Option<Regclass>, id: Option<i64>, current: Option<i64>) -> Result<bool> {
    crate::errors::require_writable("safe_delete_with_version")?;
    let target = Target::open(tbl)?;
    let id = required(id, "id")?;
    let current = required(current, "current_version")?;
    let deleted = Spi::get_one_with_args::<i64>(
        &format!(
            "WITH d AS (DELETE FROM {t} WHERE {pk} = $1 AND {v} = $2 RETURNING 1) SELECT count(*) FROM d",
            t = target.table.qualified,
            pk = quote_ident(&target.pk),
            v = target.version(),
        ),
        &[id.into(), current.into()],
    )
    .map_err(spi_error)?
    .unwrap_or(0);
    if deleted > 0 {
        return Ok(true);
    }
    match target.explain_miss(id, current) {
        e if e.sqlstate == sqlstate::OBJECT_DELETED => Ok(false),
        e => Err(e),
    }
}
