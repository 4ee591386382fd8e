//! The row trigger that enforces optimistic locking.
//!
//! Hot path: no SPI and no catalog lookup per row. What the trigger needs
//! (attribute numbers and types of the two columns, the protocol) is resolved
//! once per trigger from its arguments and the relation's tuple descriptor and
//! cached for the backend; a relcache invalidation of the table drops it.
//! Catalog lookups happen only on the error path, to word the message.

use super::{Options, Protocol};
use crate::backend::{trigger_function, TriggerCache};
use crate::monitoring::stats::{self, Outcome};
use crate::errors::{sqlstate, DbError, Result, VERSION_CONSTRAINT};
use pgrx::pg_sys;
use std::ffi::{c_int, CStr};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum IntKind {
    I16,
    I32,
    I64,
}

impl IntKind {
    pub fn of(ty: pg_sys::Oid) -> Option<IntKind> {
        match ty {
            pg_sys::INT2OID => Some(IntKind::I16),
            pg_sys::INT4OID => Some(IntKind::I32),
            pg_sys::INT8OID => Some(IntKind::I64),
            _ => None,
        }
    }
    pub fn read(self, d: pg_sys::Datum) -> i64 {
        match self {
            IntKind::I16 => d.value() as i16 as i64,
            IntKind::I32 => d.value() as i32 as i64,
            IntKind::I64 => d.value() as i64,
        }
    }
    fn datum(self, v: i64) -> pg_sys::Datum {
        match self {
            IntKind::I16 => pg_sys::Datum::from(v as i16),
            IntKind::I32 => pg_sys::Datum::from(v as i32),
            IntKind::I64 => pg_sys::Datum::from(v),
        }
    }
    fn max(self) -> i64 {
        match self {
            IntKind::I16 => i16::MAX as i64,
            IntKind::I32 => i32::MAX as i64,
            IntKind::I64 => i64::MAX,
        }
    }
}

/// What one trigger needs per row, resolved once.
#[derive(Clone, Copy)]
struct Entry {
    version_att: c_int,
    version_kind: IntKind,
    modified_att: c_int,
    protocol: Protocol,
    strict: bool,
    /// A single integer primary key, for the hot-row statistics.
    key: Option<(c_int, IntKind)>,
    /// The table statistics are counted under: a partition's root, so a
    /// partitioned table is one table in the statistics, as it is to users.
    stats_relid: pg_sys::Oid,
}

static CACHE: TriggerCache<Entry> = TriggerCache::new();

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn invalidate(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    CACHE.invalidate(relid);
}

pub fn register_invalidation() {
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(invalidate), pg_sys::Datum::from(0)) };
}

trigger_function!(
    /// `motofinai.version_trigger()`: BEFORE INSERT OR UPDATE FOR EACH ROW.
    motofinai_version_trigger,
    pg_finfo_motofinai_version_trigger,
    |fcinfo| fire(fcinfo)
);

fn fire(fcinfo: pg_sys::FunctionCallInfo) -> Result<pg_sys::Datum> {
    let td = unsafe { trigger_data(fcinfo)? };
    let entry = lookup(td)?;
    let event = td.tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
    let tuple = if event == pg_sys::TRIGGER_EVENT_UPDATE {
        on_update(td, &entry)?
    } else {
        on_insert(td, &entry)?
    };
    Ok(pg_sys::Datum::from(tuple))
}

unsafe fn trigger_data<'a>(fcinfo: pg_sys::FunctionCallInfo) -> Result<&'a pg_sys::TriggerData> {
    let context = unsafe { (*fcinfo).context };
    let is_trigger = !context.is_null() && unsafe { (*context).type_ } == pg_sys::NodeTag::T_TriggerData;
    if !is_trigger {
        return Err(protocol_violation("motofinai.version_trigger() was not called by the trigger manager"));
    }
    let td = unsafe { &*(context as *const pg_sys::TriggerData) };
    let ev = td.tg_event;
    let op = ev & pg_sys::TRIGGER_EVENT_OPMASK;
    let row_before = ev & pg_sys::TRIGGER_EVENT_ROW != 0
        && ev & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_BEFORE;
    if !row_before || !(op == pg_sys::TRIGGER_EVENT_INSERT || op == pg_sys::TRIGGER_EVENT_UPDATE) {
        return Err(protocol_violation(
            "motofinai.version_trigger() must be fired BEFORE INSERT OR UPDATE FOR EACH ROW",
        ));
    }
    Ok(td)
}

fn protocol_violation(msg: &str) -> DbError {
    DbError::new(sqlstate::TRIGGER_PROTOCOL_VIOLATED, msg)
        .hint("Use motofinai.enable_versioning() to install the trigger.")
}

fn relid(td: &pg_sys::TriggerData) -> pg_sys::Oid {
    unsafe { (*td.tg_relation).rd_id }
}

fn lookup(td: &pg_sys::TriggerData) -> Result<Entry> {
    CACHE.get(unsafe { (*td.tg_trigger).tgoid }, relid(td), || resolve(td))
}

/// Cache miss: read the trigger's arguments and find the columns.
fn resolve(td: &pg_sys::TriggerData) -> Result<Entry> {
    let trigger = unsafe { &*td.tg_trigger };
    let args: Vec<String> = (0..trigger.tgnargs as usize)
        .map(|i| unsafe { CStr::from_ptr(*trigger.tgargs.add(i)) }.to_string_lossy().into_owned())
        .collect();
    let options = Options::from_trigger_args(&args).map_err(|e| with_table(e, td))?;
    let desc = unsafe { (*td.tg_relation).rd_att };
    let (version_att, version_type) = find_column(desc, &options.version_column)
        .ok_or_else(|| missing_column(td, &options.version_column))?;
    let (modified_att, modified_type) = find_column(desc, &options.modified_column)
        .ok_or_else(|| missing_column(td, &options.modified_column))?;
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
    Ok(Entry {
        version_att,
        version_kind,
        modified_att,
        protocol: options.protocol,
        strict: options.strict,
        key: integer_key(td),
        stats_relid: partition_root(relid(td)),
    })
}

fn partition_root(relid: pg_sys::Oid) -> pg_sys::Oid {
    if !unsafe { pg_sys::get_rel_relispartition(relid) } {
        return relid;
    }
    unsafe { pgrx::direct_function_call::<pg_sys::Oid>(pg_sys::pg_partition_root, &[pgrx::IntoDatum::into_datum(relid)]) }.unwrap_or(relid)
}

/// The table's primary key, if it is one integer column.
fn integer_key(td: &pg_sys::TriggerData) -> Option<(c_int, IntKind)> {
    match primary_key(td.tg_relation).as_slice() {
        [(att, ty)] => IntKind::of(*ty).map(|kind| (*att, kind)),
        _ => None,
    }
}

/// The primary key's attribute numbers and types, in column order (from the
/// relcache; called on a cache miss or an error path only).
fn primary_key(rel: pg_sys::Relation) -> Vec<(c_int, pg_sys::Oid)> {
    let pk = unsafe {
        pg_sys::RelationGetIndexAttrBitmap(rel, pg_sys::IndexAttrBitmapKind::INDEX_ATTR_BITMAP_PRIMARY_KEY)
    };
    let desc = unsafe { (*rel).rd_att };
    let attrs = unsafe { (*desc).attrs.as_slice((*desc).natts as usize) };
    let mut out = Vec::new();
    let mut x = -1;
    loop {
        x = unsafe { pg_sys::bms_next_member(pk, x) };
        if x < 0 {
            return out;
        }
        let att = x + pg_sys::FirstLowInvalidHeapAttributeNumber;
        out.push((att, attrs[att as usize - 1].atttypid));
    }
}

pub(crate) fn find_column(desc: pg_sys::TupleDesc, name: &str) -> Option<(c_int, pg_sys::Oid)> {
    let natts = unsafe { (*desc).natts } as usize;
    let attrs = unsafe { (*desc).attrs.as_slice(natts) };
    attrs.iter().enumerate().find_map(|(i, a)| {
        let attname = unsafe { CStr::from_ptr(a.attname.data.as_ptr()) };
        (!a.attisdropped && attname.to_bytes() == name.as_bytes()).then_some((i as c_int + 1, a.atttypid))
    })
}

fn on_insert(td: &pg_sys::TriggerData, e: &Entry) -> Result<pg_sys::HeapTuple> {
    let tuple = td.tg_trigtuple;
    let desc = unsafe { (*td.tg_relation).rd_att };
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
    let now = if modified_null { unsafe { unguarded::GetCurrentTransactionStartTimestamp() } } else { 0 };
    let cols = [(e.version_att, e.version_kind.datum(new_version), version.is_none()), (e.modified_att, pg_sys::Datum::from(now), modified_null)];
    Ok(replace(tuple, desc, &cols))
}

fn on_update(td: &pg_sys::TriggerData, e: &Entry) -> Result<pg_sys::HeapTuple> {
    let desc = unsafe { (*td.tg_relation).rd_att };
    let Some(old) = attr(td.tg_trigtuple, e.version_att, desc) else {
        return Err(null_version(td, e, "the stored version is NULL"));
    };
    let old = e.version_kind.read(old);
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
            stats::record(e.stats_relid, Outcome::Conflict, None);
            return Err(conflict(td, e, read, old));
        }
    } else if e.strict {
        stats::record(e.stats_relid, Outcome::StrictRejection, None);
        return Err(with_table(
            DbError::new(
                sqlstate::VERSION_NOT_STATED,
                format!(
                    "UPDATE of \"{}\" must state the version column \"{}\"",
                    table_name(td),
                    column_name(td, e.version_att)
                ),
            )
            .detail("Versioning on this table is strict: blind writes are rejected.")
            .hint("Include the version you read in the SET list, e.g. SET version = <version read>."),
            td,
        )
        .column(column_name(td, e.version_att))
        .constraint(VERSION_CONSTRAINT));
    }
    if old >= e.version_kind.max() {
        return Err(with_table(
            DbError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                format!("version of \"{}\" row {} cannot be incremented past {}", table_name(td), row_key(td).0, old),
            )
            .hint("Widen the version column to bigint."),
            td,
        )
        .column(column_name(td, e.version_att)));
    }
    let key = e.key.and_then(|(att, kind)| attr(td.tg_trigtuple, att, desc).map(|d| kind.read(d)));
    if stats::record(e.stats_relid, Outcome::Passed, key) {
        stats::send_pending_alerts();
    }
    let now = unsafe { unguarded::GetCurrentTransactionStartTimestamp() };
    let cols = [
        (e.version_att, e.version_kind.datum(old + 1), true),
        (e.modified_att, pg_sys::Datum::from(now), true),
    ];
    Ok(replace(td.tg_newtuple, desc, &cols))
}

/// PostgreSQL functions that cannot raise an error, declared here to be
/// called without pgrx's FFI guard (a sigsetjmp per call): on the per-row
/// path of a bulk UPDATE the guards cost more than the calls themselves.
mod unguarded {
    use pgrx::pg_sys;
    extern "C" {
        pub fn GetCurrentTransactionStartTimestamp() -> pg_sys::TimestampTz;
        /// The attribute of a tuple that has it and where it is not null.
        pub fn nocachegetattr(tup: pg_sys::HeapTuple, attnum: std::ffi::c_int, desc: pg_sys::TupleDesc) -> pg_sys::Datum;
    }
}

/// `heap_getattr` on the per-row path: `None` for NULL. A column added
/// after the tuple was written (a "missing" attribute) goes through pgrx.
fn attr(tuple: pg_sys::HeapTuple, att: c_int, desc: pg_sys::TupleDesc) -> Option<pg_sys::Datum> {
    unsafe {
        let header = (*tuple).t_data;
        let natts = ((*header).t_infomask2 & pg_sys::HEAP_NATTS_MASK as u16) as c_int;
        if att > natts {
            let mut null = false;
            let value = pg_sys::heap_getattr(tuple, att, desc, &mut null);
            return (!null).then_some(value);
        }
        if (*header).t_infomask & pg_sys::HEAP_HASNULL as u16 != 0 {
            let bits = (*header).t_bits.as_ptr();
            let i = (att - 1) as usize;
            if *bits.add(i >> 3) & (1 << (i & 7)) == 0 {
                return None;
            }
        }
        Some(unguarded::nocachegetattr(tuple, att, desc))
    }
}

/// `bms_is_member` for the trigger's updated-columns set, without an FFI call.
fn is_updated(set: *const pg_sys::Bitmapset, attnum: c_int) -> bool {
    if set.is_null() {
        return false;
    }
    let x = (attnum - pg_sys::FirstLowInvalidHeapAttributeNumber) as usize;
    let bits = pg_sys::BITS_PER_BITMAPWORD as usize;
    let nwords = unsafe { (*set).nwords } as usize;
    let words = unsafe { (*set).words.as_slice(nwords) };
    words.get(x / bits).is_some_and(|w| w & (1 << (x % bits)) != 0)
}

/// Replace the columns marked `true` in `cols` and return the new tuple.
fn replace(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, cols: &[(c_int, pg_sys::Datum, bool); 2]) -> pg_sys::HeapTuple {
    let mut atts = [0 as c_int; 2];
    let mut values = [pg_sys::Datum::from(0); 2];
    let mut nulls = [false; 2];
    let mut n = 0;
    for &(att, value, set) in cols {
        if set {
            atts[n] = att;
            values[n] = value;
            n += 1;
        }
    }
    unsafe {
        pg_sys::heap_modify_tuple_by_cols(tuple, desc, n as c_int, atts.as_mut_ptr(), values.as_mut_ptr(), nulls.as_mut_ptr())
    }
}

// ---- error path only: catalog lookups are fine from here on ----

fn conflict(td: &pg_sys::TriggerData, e: &Entry, expected: i64, found: i64) -> DbError {
    let desc = unsafe { (*td.tg_relation).rd_att };
    let mut null = false;
    let modified = unsafe { pg_sys::heap_getattr(td.tg_trigtuple, e.modified_att, desc, &mut null) };
    let modified = if null { "NULL".to_string() } else { output(pg_sys::TIMESTAMPTZOID, modified) };
    let (key, key_detail) = row_key(td);
    super::conflict_error(
        &table_schema(td),
        &table_name(td),
        &column_name(td, e.version_att),
        &key_detail,
        &key,
        expected,
        found,
        &modified,
    )
}

fn null_version(td: &pg_sys::TriggerData, e: &Entry, why: &str) -> DbError {
    with_table(
        DbError::new(
            sqlstate::NOT_NULL_VIOLATION,
            format!("version of \"{}\" row {} is NULL: {why}", table_name(td), row_key(td).0),
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
            format!("versioned table \"{}\" has no column \"{column}\"", table_name(td)),
        )
        .hint("Run motofinai.enable_versioning() again after renaming or dropping columns."),
        td,
    )
    .column(column)
}

fn with_table(err: DbError, td: &pg_sys::TriggerData) -> DbError {
    err.table(&table_schema(td), &table_name(td))
}

pub(crate) fn table_name(td: &pg_sys::TriggerData) -> String {
    unsafe { CStr::from_ptr((*(*td.tg_relation).rd_rel).relname.data.as_ptr()) }.to_string_lossy().into_owned()
}

pub(crate) fn table_schema(td: &pg_sys::TriggerData) -> String {
    unsafe {
        let nsp = pg_sys::get_namespace_name((*(*td.tg_relation).rd_rel).relnamespace);
        if nsp.is_null() { String::new() } else { CStr::from_ptr(nsp).to_string_lossy().into_owned() }
    }
}

fn column_name(td: &pg_sys::TriggerData, att: c_int) -> String {
    let desc = unsafe { (*td.tg_relation).rd_att };
    let attrs = unsafe { (*desc).attrs.as_slice((*desc).natts as usize) };
    unsafe { CStr::from_ptr(attrs[att as usize - 1].attname.data.as_ptr()) }.to_string_lossy().into_owned()
}

/// Primary-key columns and their values in the old row; the ctid when there is no key.
/// The old row's key, as `42` or `(1, x)` for messages and as
/// `Key (id)=(42)` for details; the ctid when the table has no primary key.
fn row_key(td: &pg_sys::TriggerData) -> (String, String) {
    let desc = unsafe { (*td.tg_relation).rd_att };
    let mut kv: Vec<(String, String)> = primary_key(td.tg_relation)
        .into_iter()
        .map(|(att, ty)| {
            let mut null = false;
            let value = unsafe { pg_sys::heap_getattr(td.tg_trigtuple, att, desc, &mut null) };
            (column_name(td, att), if null { "NULL".into() } else { output(ty, value) })
        })
        .collect();
    if kv.is_empty() {
        let tid = unsafe { &(*td.tg_trigtuple).t_self };
        let block = ((tid.ip_blkid.bi_hi as u32) << 16) | tid.ip_blkid.bi_lo as u32;
        kv.push(("ctid".into(), format!("({},{})", block, tid.ip_posid)));
    }
    let names: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
    let values: Vec<&str> = kv.iter().map(|(_, v)| v.as_str()).collect();
    let short = if kv.len() == 1 { values[0].to_string() } else { format!("({})", values.join(", ")) };
    (short, format!("Key ({})=({})", names.join(", "), values.join(", ")))
}

fn output(ty: pg_sys::Oid, value: pg_sys::Datum) -> String {
    unsafe {
        let mut func = pg_sys::InvalidOid;
        let mut varlena = false;
        pg_sys::getTypeOutputInfo(ty, &mut func, &mut varlena);
        let s = pg_sys::OidOutputFunctionCall(func, value);
        CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}
