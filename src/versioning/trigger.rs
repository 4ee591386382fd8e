//! The row trigger that enforces optimistic locking.
//!
//! Hot path: no SPI and no catalog lookup per row. What the trigger needs
//! (attribute numbers and types of the two columns, the protocol) is resolved
//! once per trigger from its arguments and the relation's tuple descriptor and
//! cached for the backend; a relcache invalidation of the table drops it.
//! Catalog lookups happen only on the error path, to word the message.

use super::{Mode, Options, Protocol};
use crate::errors::{sqlstate, DbError, Result, VERSION_CONSTRAINT};
use crate::monitoring::log::{Event, Kind};
use crate::monitoring::store;
use crate::pg::fmgr::v1_function;
use crate::pg::trigger::{self as trig, row_trigger_data, Entries, Misfire, Timing, TriggerCache};
use crate::pg::tuple::{self, attr, find_column, is_updated, IntKind};
use pgrx::pg_sys;
use std::cell::RefCell;
use std::ffi::c_int;

/// What one trigger needs per row, resolved once.
#[derive(Clone, Copy)]
struct Entry {
    version_att: c_int,
    version_kind: IntKind,
    modified_att: c_int,
    protocol: Protocol,
    strict: bool,
    /// Observe mode: count and log would-be conflicts, let them through.
    observe: bool,
    /// A single integer primary key, for the hot-row statistics.
    key: Option<(c_int, IntKind)>,
    /// The table statistics are counted under: a partition's root, so a
    /// partitioned table is one table in the statistics, as it is to users.
    stats_relid: pg_sys::Oid,
}

thread_local! {
    static ENTRIES: Entries<Entry> = const { RefCell::new(Vec::new()) };
}
static CACHE: TriggerCache<Entry> = TriggerCache::new(&ENTRIES);

/// # Safety
/// Called by PostgreSQL's relcache invalidation machinery with the arguments it documents.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn invalidate(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    CACHE.invalidate(relid);
}

pub fn register_invalidation() {
    // SAFETY: called once from _PG_init with a function that lives as long as the library.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(invalidate), pg_sys::Datum::from(0)) };
}

v1_function!(
    /// `motofinai.version_trigger()`: BEFORE INSERT OR UPDATE FOR EACH ROW.
    motofinai_version_trigger,
    pg_finfo_motofinai_version_trigger,
    |fcinfo| fire(fcinfo)
);

fn fire(fcinfo: pg_sys::FunctionCallInfo) -> Result<pg_sys::Datum> {
    let ops = [pg_sys::TRIGGER_EVENT_INSERT, pg_sys::TRIGGER_EVENT_UPDATE];
    // SAFETY: the fmgr's fcinfo for this call.
    let (td, op) = unsafe { row_trigger_data(fcinfo, Timing::Before, &ops) }.map_err(|misfire| {
        DbError::new(
            sqlstate::TRIGGER_PROTOCOL_VIOLATED,
            match misfire {
                Misfire::NotATrigger => "motofinai.version_trigger() was not called by the trigger manager",
                Misfire::WrongEvent => "motofinai.version_trigger() must be fired BEFORE INSERT OR UPDATE FOR EACH ROW",
            },
        )
        .hint("Use motofinai.enable_versioning() to install the trigger.")
    })?;
    let entry = CACHE.get(trig::trigger(td).tgoid, tuple::relid(td.tg_relation), || resolve(td))?;
    let tuple = if op == pg_sys::TRIGGER_EVENT_UPDATE { on_update(td, &entry)? } else { on_insert(td, &entry)? };
    Ok(pg_sys::Datum::from(tuple))
}

/// Cache miss: read the trigger's arguments and find the columns.
fn resolve(td: &pg_sys::TriggerData) -> Result<Entry> {
    let options = Options::from_trigger_args(&trig::arguments(trig::trigger(td))).map_err(|e| with_table(e, td))?;
    let desc = tuple::descriptor(td.tg_relation);
    let (version_att, version_type) =
        find_column(desc, &options.version_column).ok_or_else(|| missing_column(td, &options.version_column))?;
    let (modified_att, modified_type) =
        find_column(desc, &options.modified_column).ok_or_else(|| missing_column(td, &options.modified_column))?;
    let version_kind = IntKind::of(version_type).ok_or_else(|| {
        with_table(
            DbError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("version column \"{}\" must be smallint, integer or bigint", options.version_column),
            ),
            td,
        )
    })?;
    if modified_type != pg_sys::TIMESTAMPTZOID {
        return Err(with_table(
            DbError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("modified column \"{}\" must be timestamp with time zone", options.modified_column),
            ),
            td,
        ));
    }
    let key = match tuple::primary_key(td.tg_relation).as_slice() {
        [(att, ty)] => IntKind::of(*ty).map(|kind| (*att, kind)),
        _ => None,
    };
    Ok(Entry {
        version_att,
        version_kind,
        modified_att,
        protocol: options.protocol,
        strict: options.strict,
        observe: options.mode == Mode::Observe,
        key,
        stats_relid: tuple::partition_root(tuple::relid(td.tg_relation)),
    })
}

fn on_insert(td: &pg_sys::TriggerData, e: &Entry) -> Result<pg_sys::HeapTuple> {
    let tuple = td.tg_trigtuple;
    let desc = tuple::descriptor(td.tg_relation);
    let version = attr(tuple, e.version_att, desc).map(|v| e.version_kind.read(v));
    let modified_null = attr(tuple, e.modified_att, desc).is_none();
    if let Some(v) = version {
        if v < 1 {
            return Err(with_table(
                DbError::new(sqlstate::CHECK_VIOLATION, format!("version must be at least 1, got {v}"))
                    .constraint(VERSION_CONSTRAINT),
                td,
            )
            .column(column_name(td, e.version_att)));
        }
    }
    if version.is_some() && !modified_null {
        return Ok(tuple);
    }
    let new_version = version.unwrap_or(1);
    let now = if modified_null { tuple::transaction_start() } else { 0 };
    let cols = [
        (e.version_att, e.version_kind.datum(new_version), version.is_none()),
        (e.modified_att, pg_sys::Datum::from(now), modified_null),
    ];
    Ok(tuple::replace(tuple, desc, &cols))
}

fn on_update(td: &pg_sys::TriggerData, e: &Entry) -> Result<pg_sys::HeapTuple> {
    let desc = tuple::descriptor(td.tg_relation);
    let Some(old) = attr(td.tg_trigtuple, e.version_att, desc) else {
        return Err(null_version(td, e, "the stored version is NULL"));
    };
    let old = e.version_kind.read(old);
    let key = e.key.and_then(|(att, kind)| attr(td.tg_trigtuple, att, desc).map(|d| kind.read(d)));
    let event = |kind, expected| Event {
        relid: u32::from(e.stats_relid),
        key,
        expected,
        found: old,
        kind,
        observed: e.observe,
    };
    if is_updated(td.tg_updatedcols, e.version_att) {
        let Some(stated) = attr(td.tg_newtuple, e.version_att, desc) else {
            return Err(null_version(td, e, "the UPDATE sets the version to NULL"));
        };
        let stated = e.version_kind.read(stated);
        let read = match e.protocol {
            Protocol::Expected => stated,
            Protocol::Increment => stated.wrapping_sub(1),
        };
        if read != old {
            store::conflict(event(Kind::StaleVersion, read));
            if !e.observe {
                return Err(conflict(td, e, read, old));
            }
        }
    } else if e.strict {
        store::conflict(event(Kind::NotStated, old));
        if !e.observe {
            return Err(not_stated(td, e));
        }
    }
    if old >= e.version_kind.max() {
        return Err(with_table(
            DbError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                format!(
                    "version of \"{}\" row {} cannot be incremented past {}",
                    tuple::relation_name(td.tg_relation),
                    row_key(td).0,
                    old
                ),
            )
            .hint("Widen the version column to bigint."),
            td,
        )
        .column(column_name(td, e.version_att)));
    }
    store::record(e.stats_relid, key);
    Ok(bump(td, e, old))
}

/// The new row with the version bumped from `old` and the time stamped.
fn bump(td: &pg_sys::TriggerData, e: &Entry, old: i64) -> pg_sys::HeapTuple {
    let cols = [
        (e.version_att, e.version_kind.datum(old + 1), true),
        (e.modified_att, pg_sys::Datum::from(tuple::transaction_start()), true),
    ];
    tuple::replace(td.tg_newtuple, tuple::descriptor(td.tg_relation), &cols)
}

// ---- error path only: catalog lookups are fine from here on ----

fn conflict(td: &pg_sys::TriggerData, e: &Entry, expected: i64, found: i64) -> DbError {
    let desc = tuple::descriptor(td.tg_relation);
    let modified = tuple::getattr_guarded(td.tg_trigtuple, e.modified_att, desc)
        .map_or_else(|| "NULL".to_string(), |m| tuple::output(pg_sys::TIMESTAMPTZOID, m));
    let (key, key_detail) = row_key(td);
    super::conflict_error(
        &tuple::relation_schema(td.tg_relation),
        &tuple::relation_name(td.tg_relation),
        &column_name(td, e.version_att),
        &key_detail,
        &key,
        expected,
        found,
        &modified,
    )
}

fn not_stated(td: &pg_sys::TriggerData, e: &Entry) -> DbError {
    with_table(
        DbError::new(
            sqlstate::VERSION_NOT_STATED,
            format!(
                "UPDATE of \"{}\" must state the version column \"{}\"",
                tuple::relation_name(td.tg_relation),
                column_name(td, e.version_att)
            ),
        )
        .detail("Versioning on this table is strict: blind writes are rejected.")
        .hint("Include the version you read in the SET list, e.g. SET version = <version read>."),
        td,
    )
    .column(column_name(td, e.version_att))
    .constraint(VERSION_CONSTRAINT)
}

fn null_version(td: &pg_sys::TriggerData, e: &Entry, why: &str) -> DbError {
    with_table(
        DbError::new(
            sqlstate::NOT_NULL_VIOLATION,
            format!("version of \"{}\" row {} is NULL: {why}", tuple::relation_name(td.tg_relation), row_key(td).0),
        )
        .hint("A versioned row needs a version; set it to 1 once, then update normally."),
        td,
    )
    .column(column_name(td, e.version_att))
    .constraint(VERSION_CONSTRAINT)
}

fn missing_column(td: &pg_sys::TriggerData, column: &str) -> DbError {
    with_table(
        DbError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("versioned table \"{}\" has no column \"{column}\"", tuple::relation_name(td.tg_relation)),
        )
        .hint("Run motofinai.enable_versioning() again after renaming or dropping columns."),
        td,
    )
    .column(column)
}

fn with_table(err: DbError, td: &pg_sys::TriggerData) -> DbError {
    err.table(&tuple::relation_schema(td.tg_relation), &tuple::relation_name(td.tg_relation))
}

fn column_name(td: &pg_sys::TriggerData, att: c_int) -> String {
    tuple::column_name(tuple::descriptor(td.tg_relation), att)
}

/// The old row's key, as `42` or `(1, x)` for messages and as
/// `Key (id)=(42)` for details; the ctid when the table has no primary key.
fn row_key(td: &pg_sys::TriggerData) -> (String, String) {
    let desc = tuple::descriptor(td.tg_relation);
    let mut kv: Vec<(String, String)> = tuple::primary_key(td.tg_relation)
        .into_iter()
        .map(|(att, ty)| {
            let value = tuple::getattr_guarded(td.tg_trigtuple, att, desc);
            (column_name(td, att), value.map_or_else(|| "NULL".into(), |v| tuple::output(ty, v)))
        })
        .collect();
    if kv.is_empty() {
        kv.push(("ctid".into(), tuple::ctid_text(td.tg_trigtuple)));
    }
    let names: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
    let values: Vec<&str> = kv.iter().map(|(_, v)| v.as_str()).collect();
    let short = if kv.len() == 1 { values[0].to_string() } else { format!("({})", values.join(", ")) };
    (short, format!("Key ({})=({})", names.join(", "), values.join(", ")))
}
