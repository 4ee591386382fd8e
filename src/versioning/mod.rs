//! Optimistic locking enforced by the database.
//!
//! `enable_versioning` adds the columns, the index and the row trigger
//! ([`trigger`]) and registers the table in `motofinai.versioning_config`;
//! [`rows`] holds the get-for-update / safe update / safe delete helpers.

pub mod rows;
pub mod trigger;

use crate::catalog::{quote_ident, quote_literal, Regclass, Table};
use crate::errors::{finish, null_argument, spi_error, sqlstate, DbError, Result, VERSION_CONSTRAINT};
use pgrx::prelude::*;

pub const TRIGGER_NAME: &str = "motofinai_versioning";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    /// The UPDATE writes back the version it read (Django's plain `save()`).
    Expected,
    /// The UPDATE writes read + 1 (the seed's `increment_version()`).
    Increment,
}

impl Protocol {
    pub fn parse(s: &str) -> Result<Protocol> {
        match s {
            "expected" => Ok(Protocol::Expected),
            "increment" => Ok(Protocol::Increment),
            other => {
                Err(DbError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("unknown versioning protocol \"{other}\""))
                    .hint("protocol is 'expected' (write the version you read) or 'increment' (write it plus one)."))
            }
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Expected => "expected",
            Protocol::Increment => "increment",
        }
    }
}

/// What the trigger does with a stale or (under strict) blind write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Reject it (the conflict error).
    Enforce,
    /// Count and log it as a would-be conflict, and let it through: for
    /// watching a live application before enforcing.
    Observe,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "observe" => Ok(Mode::Observe),
            other => {
                Err(DbError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("unknown versioning mode \"{other}\""))
                    .hint(
                        "mode is 'enforce' (reject stale writes) or 'observe' (count and log them, let them through).",
                    ))
            }
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Observe => "observe",
        }
    }
}

/// A table's versioning options; the trigger carries them as its arguments
/// (a fifth, `observe`, only in observe mode: enforcing triggers keep the
/// four arguments they always had).
#[derive(Clone, Debug)]
pub struct Options {
    pub version_column: String,
    pub modified_column: String,
    pub protocol: Protocol,
    pub strict: bool,
    pub mode: Mode,
}

impl Options {
    pub fn from_trigger_args(args: &[String]) -> Result<Options> {
        let (v, m, p, s, mode) = match args {
            [v, m, p, s] => (v, m, p, s, Mode::Enforce),
            [v, m, p, s, mode] => (v, m, p, s, Mode::parse(mode)?),
            _ => return Err(DbError::new(
                sqlstate::TRIGGER_PROTOCOL_VIOLATED,
                "motofinai.version_trigger() takes four arguments: version column, modified column, protocol, strict",
            )
            .hint("Use motofinai.enable_versioning() to install the trigger.")),
        };
        let strict = match s.as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(DbError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("strict must be true or false, not \"{other}\""),
                ))
            }
        };
        Ok(Options {
            version_column: v.clone(),
            modified_column: m.clone(),
            protocol: Protocol::parse(p)?,
            strict,
            mode,
        })
    }

    fn trigger_args(&self) -> String {
        let mut args = vec![
            quote_literal(&self.version_column),
            quote_literal(&self.modified_column),
            quote_literal(self.protocol.as_str()),
            quote_literal(if self.strict { "true" } else { "false" }),
        ];
        if self.mode == Mode::Observe {
            args.push(quote_literal(self.mode.as_str()));
        }
        args.join(", ")
    }
}

/// The optimistic-locking conflict (the seed's ConcurrencyException), raised
/// alike by the trigger and by the row helpers.
#[allow(clippy::too_many_arguments)]
pub fn conflict_error(
    schema: &str,
    table: &str,
    version_column: &str,
    key_detail: &str,
    key: &str,
    expected: i64,
    found: i64,
    last_modified: &str,
) -> DbError {
    DbError::new(
        sqlstate::SERIALIZATION_FAILURE,
        format!("{table} row {key} was modified by another transaction (expected version {expected}, found {found})"),
    )
    .detail(format!(
        "{key_detail}: expected version {expected}, current version {found}, last modified at {last_modified}."
    ))
    .hint("Reload the row and retry the change against its current version.")
    .table(schema, table)
    .column(version_column)
    .constraint(VERSION_CONSTRAINT)
}

fn checked_name(value: Option<String>, arg: &str) -> Result<String> {
    let name = value.ok_or_else(|| null_argument(arg))?;
    if name.is_empty() {
        return Err(DbError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("{arg} must not be empty")));
    }
    if name.len() >= pg_sys::NAMEDATALEN as usize {
        return Err(DbError::new(
            sqlstate::NAME_TOO_LONG,
            format!("{arg} \"{name}\" is longer than {} bytes", pg_sys::NAMEDATALEN - 1),
        ));
    }
    Ok(name)
}

/// A column enable_versioning would create must be a plain identifier (what
/// Django names columns): a typo such as 'no such col' or 'Version' is
/// refused rather than silently becoming a new, quoted column.
fn require_plain(table: &Table, name: &str, arg: &str) -> Result<()> {
    if quote_ident(name) == name {
        return Ok(());
    }
    Err(DbError::new(
        sqlstate::INVALID_NAME,
        format!("{arg} \"{name}\" is not a column of {} and not a plain identifier", table.name),
    )
    .hint(
        "Columns that enable_versioning adds are named in lower case letters, digits and underscores; \
           to use another name, add the column yourself first.",
    )
    .table(&table.schema, &table.name))
}

/// Turn on optimistic locking for a table. Idempotent; a second call may
/// change the protocol, strict and the index, never the columns.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn enable_versioning(
    tbl: Option<Regclass>,
    version_column: default!(Option<String>, "'version'"),
    modified_column: default!(Option<String>, "'last_modified_at'"),
    protocol: default!(Option<String>, "'expected'"),
    strict: default!(Option<bool>, false),
    create_index: default!(Option<bool>, true),
    mode: default!(Option<String>, "'enforce'"),
) {
    finish(|| {
        let options = Options {
            version_column: checked_name(version_column, "version_column")?,
            modified_column: checked_name(modified_column, "modified_column")?,
            protocol: Protocol::parse(&protocol.ok_or_else(|| null_argument("protocol"))?)?,
            strict: strict.ok_or_else(|| null_argument("strict"))?,
            mode: Mode::parse(&mode.ok_or_else(|| null_argument("mode"))?)?,
        };
        enable(tbl, options, create_index.ok_or_else(|| null_argument("create_index"))?)
    })
}

/// Switch a versioned table between enforcing and observing (`mode`
/// 'enforce' or 'observe'), keeping its other options.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn set_versioning_mode(tbl: Option<Regclass>, mode: Option<String>) {
    finish(|| {
        crate::errors::require_writable("set_versioning_mode")?;
        let mode = Mode::parse(&mode.ok_or_else(|| null_argument("mode"))?)?;
        let table = Table::open(tbl, "tbl")?;
        let options = Options { mode, ..registered_options(&table)? };
        install(&table, &options)
    })
}

fn enable(tbl: Option<Regclass>, options: Options, create_index: bool) -> Result<()> {
    crate::errors::require_writable("enable_versioning")?;
    let table = Table::open(tbl, "tbl")?.require_table()?;
    require_versionable(&table)?;
    if options.version_column == options.modified_column {
        return Err(DbError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            "version_column and modified_column must be different columns",
        ));
    }
    if let Some(registered) = registration(&table)? {
        require_same_columns(&table, &registered, &options)?;
    }
    let version = quote_ident(&options.version_column);
    let modified = quote_ident(&options.modified_column);

    // Add what is missing; both defaults are non-volatile, so no table rewrite.
    let mut ddl = Vec::new();
    match table.column_type(&options.version_column)? {
        None => {
            require_plain(&table, &options.version_column, "version_column")?;
            ddl.push((&options.version_column, "integer NOT NULL DEFAULT 1"));
        }
        Some(ty) if crate::catalog::is_integer_type(ty) => {}
        Some(_) => {
            return Err(DbError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("column \"{}\" exists and is not smallint, integer or bigint", options.version_column),
            )
            .table(&table.schema, &table.name)
            .column(&options.version_column))
        }
    }
    match table.column_type(&options.modified_column)? {
        None => {
            require_plain(&table, &options.modified_column, "modified_column")?;
            ddl.push((&options.modified_column, "timestamptz NOT NULL DEFAULT now()"));
        }
        Some(ty) if ty == pg_sys::TIMESTAMPTZOID => {}
        Some(_) => {
            return Err(DbError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("column \"{}\" exists and is not timestamp with time zone", options.modified_column),
            )
            .table(&table.schema, &table.name)
            .column(&options.modified_column))
        }
    }
    let q = &table.qualified;
    if !ddl.is_empty() {
        let adds: Vec<String> = ddl.iter().map(|(c, ty)| format!("ADD COLUMN {} {ty}", quote_ident(c))).collect();
        run(&format!("ALTER TABLE {q} {}", adds.join(", ")))?;
        // Announced, so that a misspelt column is seen at once.
        for (column, ty) in &ddl {
            pgrx::notice!("enable_versioning added column \"{column}\" ({ty}) to {q}");
        }
    }
    if create_index && !has_version_index(&table, &options)? {
        run(&format!("CREATE INDEX ON {q} ({version}, {modified} DESC)"))?;
    }
    install(&table, &options)
}

/// The trigger for these options, and their registration.
fn install(table: &Table, options: &Options) -> Result<()> {
    run(&format!(
        "CREATE OR REPLACE TRIGGER {TRIGGER_NAME} BEFORE INSERT OR UPDATE ON {} \
         FOR EACH ROW EXECUTE FUNCTION motofinai.version_trigger({})",
        table.qualified,
        options.trigger_args()
    ))?;
    Spi::run_with_args(
        "INSERT INTO motofinai.versioning_config AS c (tbl, version_column, modified_column, protocol, strict, mode) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tbl) DO UPDATE SET version_column = excluded.version_column, \
           modified_column = excluded.modified_column, protocol = excluded.protocol, \
           strict = excluded.strict, mode = excluded.mode, updated_at = now()",
        &[
            Regclass(table.oid).into(),
            options.version_column.as_str().into(),
            options.modified_column.as_str().into(),
            options.protocol.as_str().into(),
            options.strict.into(),
            options.mode.as_str().into(),
        ],
    )
    .map_err(spi_error)
}

/// Tables whose versioning would not behave as registered: a temporary
/// table (its registration would outlive the session: no drop event fires),
/// a partition of a versioned table (the parent's trigger already covers
/// it, with the parent's options), or a partitioned table with a partition
/// versioned on its own (the parent's trigger would silently replace it).
fn require_versionable(table: &Table) -> Result<()> {
    // SAFETY: a syscache lookup of a relation that exists (Table::open found it).
    if unsafe { pg_sys::get_rel_persistence(table.oid) } as u8 == pg_sys::RELPERSISTENCE_TEMP {
        return Err(DbError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("cannot version temporary table \"{}\"", table.name),
        )
        .hint("Version the permanent table the data lives in.")
        .table(&table.schema, &table.name));
    }
    // (the other table's name found, what it is to this one, what to do)
    let related = [
        (
            "SELECT c.tbl::text FROM pg_catalog.pg_partition_ancestors($1) a \
               JOIN motofinai.versioning_config c ON c.tbl = a.relid WHERE a.relid <> $1 LIMIT 1",
            "is a partition of versioned table",
            "Its parent's versioning already covers it; change options on the parent.",
        ),
        (
            "SELECT c.tbl::text FROM pg_catalog.pg_partition_tree($1) t \
               JOIN motofinai.versioning_config c ON c.tbl = t.relid WHERE t.relid <> $1 LIMIT 1",
            "has a partition versioned on its own:",
            "Run motofinai.disable_versioning on that partition first.",
        ),
    ];
    for (sql, relation, hint) in related {
        if let Some(other) = crate::catalog::select_one::<String>(sql, &[table.oid.into()])? {
            return Err(DbError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("\"{}\" {relation} {other}", table.name),
            )
            .hint(hint)
            .table(&table.schema, &table.name));
        }
    }
    Ok(())
}

/// Is there already an index on exactly (version, modified DESC)?
fn has_version_index(table: &Table, options: &Options) -> Result<bool> {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_index i \
           WHERE i.indrelid = $1 AND i.indnkeyatts = 2 AND i.indexprs IS NULL AND i.indpred IS NULL \
             AND i.indkey[0] = (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = $2) \
             AND i.indkey[1] = (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = $3))",
        &[table.oid.into(), options.version_column.as_str().into(), options.modified_column.as_str().into()],
    )
    .map(|b| b.unwrap_or(false))
    .map_err(spi_error)
}

fn run(sql: &str) -> Result<()> {
    Spi::run(sql).map_err(spi_error)
}

/// Turn optimistic locking off: the trigger goes, the columns and their data stay.
#[pg_extern(volatile, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn disable_versioning(tbl: Option<Regclass>) {
    finish(|| disable(tbl))
}

fn disable(tbl: Option<Regclass>) -> Result<()> {
    crate::errors::require_writable("disable_versioning")?;
    let table = Table::open(tbl, "tbl")?;
    run(&format!("DROP TRIGGER IF EXISTS {TRIGGER_NAME} ON {}", table.qualified))?;
    Spi::run_with_args("DELETE FROM motofinai.versioning_config WHERE tbl = $1", &[Regclass(table.oid).into()])
        .map_err(spi_error)
}

/// Re-enabling may change the protocol, strict and the index, but never
/// move the check away from a column the table still has: every client
/// still writing it would silently lose its protection. A registered column
/// that is gone (ALTER TABLE ... RENAME COLUMN) may be replaced: that is the
/// documented way to follow a rename.
fn require_same_columns(table: &Table, registered: &Options, asked: &Options) -> Result<()> {
    let keeps = |old: &str, new: &str| -> Result<bool> { Ok(old == new || table.column_type(old)?.is_none()) };
    if keeps(&registered.version_column, &asked.version_column)?
        && keeps(&registered.modified_column, &asked.modified_column)?
    {
        return Ok(());
    }
    Err(DbError::new(
        sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!(
            "table \"{}\" is already versioned on columns \"{}\" and \"{}\"",
            table.name, registered.version_column, registered.modified_column
        ),
    )
    .detail(format!(
        "enable_versioning was asked for version column \"{}\" and modified column \"{}\".",
        asked.version_column, asked.modified_column
    ))
    .hint(format!(
        "Calling enable_versioning again may change protocol, strict and create_index only (or name a registered \
         column that was renamed). To version other columns, run SELECT motofinai.disable_versioning('{0}'); then \
         enable_versioning('{0}', ...) with the new columns (the old columns and their data stay).",
        table.qualified.replace('\'', "''")
    ))
    .table(&table.schema, &table.name))
}

/// The registered options of a table, if it is registered.
fn registration(table: &Table) -> Result<Option<Options>> {
    let row = Spi::connect(|c| {
        c.select(
            "SELECT version_column::text, modified_column::text, protocol, strict, mode \
               FROM motofinai.versioning_config WHERE tbl = $1",
            None,
            &[Regclass(table.oid).into()],
        )?
        .map(|r| {
            Ok((r.get::<String>(1)?, r.get::<String>(2)?, r.get::<String>(3)?, r.get::<bool>(4)?, r.get::<String>(5)?))
        })
        .next()
        .transpose()
    })
    .map_err(spi_error)?;
    match row {
        Some((Some(v), Some(m), Some(p), strict, mode)) => Ok(Some(Options {
            version_column: v,
            modified_column: m,
            protocol: Protocol::parse(&p)?,
            strict: strict.unwrap_or(false),
            mode: Mode::parse(mode.as_deref().unwrap_or("enforce"))?,
        })),
        _ => Ok(None),
    }
}

/// The options a registered table was enabled with.
pub fn registered_options(table: &Table) -> Result<Options> {
    match registration(table)? {
        Some(options) => Ok(options),
        None => Err(DbError::new(
            sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("table \"{}\" is not versioned", table.name),
        )
        .hint(format!("Run SELECT motofinai.enable_versioning('{}') first.", table.qualified.replace('\'', "''")))
        .table(&table.schema, &table.name)),
    }
}

extension_sql!(
    r#"
CREATE FUNCTION motofinai.version_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'motofinai_version_trigger';
COMMENT ON FUNCTION motofinai.version_trigger() IS
    'Optimistic locking row trigger; installed by motofinai.enable_versioning()';
"#,
    name = "version_trigger",
    requires = ["config"],
);

/// A trigger's arguments, from `pg_trigger.tgargs` (each one NUL-terminated):
/// what `versioned_tables` compares with the registration.
#[pg_extern(immutable, strict, parallel_safe, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn trigger_arguments(tgargs: &[u8]) -> Vec<String> {
    let mut args: Vec<String> = tgargs.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    args.pop(); // what follows the last NUL
    args
}

// trigger_matches: the trigger is the one enable_versioning creates for the
// registered options (BEFORE INSERT OR UPDATE FOR EACH ROW = tgtype 23, on
// every column, no WHEN). A manual CREATE OR REPLACE TRIGGER, or a restore
// that mixed dumps, can make it drift; the system and quick checks report it.
extension_sql!(
    r#"
CREATE VIEW motofinai.versioned_tables AS
SELECT c.tbl AS table_name,
       c.version_column,
       c.modified_column,
       c.protocol,
       c.strict,
       c.mode,
       t.oid IS NOT NULL AS trigger_present,
       COALESCE(t.tgenabled <> 'D', false) AS trigger_enabled,
       motofinai.trigger_arguments(t.tgargs) AS trigger_arguments,
       COALESCE(t.tgfoid = 'motofinai.version_trigger()'::pg_catalog.regprocedure
                AND t.tgtype = 23 AND pg_catalog.cardinality(t.tgattr::pg_catalog.int2[]) = 0 AND t.tgqual IS NULL
                AND motofinai.trigger_arguments(t.tgargs)
                    = ARRAY[c.version_column::text, c.modified_column::text, c.protocol, c.strict::text]
                      || CASE WHEN c.mode = 'observe' THEN ARRAY['observe'] ELSE '{}'::text[] END,
                false) AS trigger_matches,
       c.enabled_at,
       c.updated_at
  FROM motofinai.versioning_config c
  LEFT JOIN pg_catalog.pg_trigger t
    ON t.tgrelid = c.tbl AND t.tgname = 'motofinai_versioning' AND NOT t.tgisinternal;
COMMENT ON VIEW motofinai.versioned_tables IS
    'Tables under optimistic locking, their options, and whether the trigger is there, enabled and as registered';
-- Readable by all, as the configuration is: the quick and system checks read it.
GRANT SELECT ON motofinai.versioned_tables TO PUBLIC;
"#,
    name = "versioned_tables_view",
    requires = ["config", "version_trigger", trigger_arguments],
);
