//! Heap tuples, tuple descriptors and relations, read the way PostgreSQL's
//! own macros do, for the row triggers' per-row path: no SPI, no catalog
//! lookup, and no pgrx FFI guard (a `sigsetjmp` per call) on calls that
//! cannot raise an error. Catalog lookups here are for the error path only.

use pgrx::pg_sys;
use std::ffi::{c_int, CStr};

/// PostgreSQL functions that cannot raise an error, declared here to be
/// called without pgrx's guard: on the per-row path of a bulk UPDATE the
/// guards cost more than the calls themselves.
mod unguarded {
    use pgrx::pg_sys;
    extern "C" {
        pub fn GetCurrentTransactionStartTimestamp() -> pg_sys::TimestampTz;
        /// The attribute of a tuple that has it and where it is not null.
        pub fn nocachegetattr(
            tup: pg_sys::HeapTuple,
            attnum: std::ffi::c_int,
            desc: pg_sys::TupleDesc,
        ) -> pg_sys::Datum;
    }
}

/// `GetCurrentTransactionStartTimestamp()` (xact.c): `now()`.
pub fn transaction_start() -> pg_sys::TimestampTz {
    // SAFETY: reads a backend global; valid inside a transaction, where
    // every trigger runs; cannot raise.
    unsafe { unguarded::GetCurrentTransactionStartTimestamp() }
}

/// The integer types a version or key column may have.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
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
    /// `DatumGetInt16/32/64` (postgres.h).
    pub fn read(self, d: pg_sys::Datum) -> i64 {
        match self {
            IntKind::I16 => d.value() as i16 as i64,
            IntKind::I32 => d.value() as i32 as i64,
            IntKind::I64 => d.value() as i64,
        }
    }
    /// `Int16/32/64GetDatum` (postgres.h).
    pub fn datum(self, v: i64) -> pg_sys::Datum {
        match self {
            IntKind::I16 => pg_sys::Datum::from(v as i16),
            IntKind::I32 => pg_sys::Datum::from(v as i32),
            IntKind::I64 => pg_sys::Datum::from(v),
        }
    }
    pub fn max(self) -> i64 {
        match self {
            IntKind::I16 => i16::MAX as i64,
            IntKind::I32 => i32::MAX as i64,
            IntKind::I64 => i64::MAX,
        }
    }
}

/// The live attributes of a tuple descriptor (`TupleDescAttr` over `natts`).
/// The one place where the supported majors differ in code: from PostgreSQL
/// 18 the descriptor holds `natts` `CompactAttribute`s first and the full
/// attributes after them (tupdesc.h's `TupleDescAttr`).
fn attributes<'a>(desc: pg_sys::TupleDesc) -> &'a [pg_sys::FormData_pg_attribute] {
    #[cfg(not(feature = "pg18"))]
    // SAFETY: `desc` is a relation's or a trigger's valid descriptor, which
    // outlives the call it was handed to; `attrs` has `natts` entries.
    unsafe {
        (*desc).attrs.as_slice((*desc).natts as usize)
    }
    #[cfg(feature = "pg18")]
    // SAFETY: as above; in PostgreSQL 18 the `natts` FormData_pg_attribute
    // entries follow the `natts` entries of `compact_attrs`.
    unsafe {
        let natts = (*desc).natts as usize;
        std::slice::from_raw_parts((*desc).compact_attrs.as_ptr().add(natts).cast(), natts)
    }
}

/// `NameStr` of an attribute (c.h).
fn attname(a: &pg_sys::FormData_pg_attribute) -> &CStr {
    // SAFETY: a NameData is a NUL-terminated array of NAMEDATALEN bytes.
    unsafe { CStr::from_ptr(a.attname.data.as_ptr()) }
}

/// The attribute number and type of a live column, by name.
pub fn find_column(desc: pg_sys::TupleDesc, name: &str) -> Option<(c_int, pg_sys::Oid)> {
    attributes(desc).iter().enumerate().find_map(|(i, a)| {
        (!a.attisdropped && attname(a).to_bytes() == name.as_bytes()).then_some((i as c_int + 1, a.atttypid))
    })
}

/// The name of attribute `att` (1-based).
pub fn column_name(desc: pg_sys::TupleDesc, att: c_int) -> String {
    attributes(desc).get(att as usize - 1).map(|a| attname(a).to_string_lossy().into_owned()).unwrap_or_default()
}

/// `heap_getattr` (htup_details.h) on the per-row path: `None` for NULL.
/// A column added after the tuple was written (a "missing" attribute) goes
/// through PostgreSQL's own function.
pub fn attr(tuple: pg_sys::HeapTuple, att: c_int, desc: pg_sys::TupleDesc) -> Option<pg_sys::Datum> {
    // SAFETY: `tuple` is a valid heap tuple of the relation `desc` describes
    // (the trigger manager's), and 1 <= att <= desc's natts. The header
    // fields are read as HeapTupleHeaderGetNatts, HeapTupleHasNulls and
    // att_isnull read them.
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

/// `heap_getattr` through pgrx's guard, for the error path.
pub fn getattr_guarded(tuple: pg_sys::HeapTuple, att: c_int, desc: pg_sys::TupleDesc) -> Option<pg_sys::Datum> {
    let mut null = false;
    // SAFETY: as for `attr`; a PostgreSQL error becomes a Rust panic.
    let value = unsafe { pg_sys::heap_getattr(tuple, att, desc, &mut null) };
    (!null).then_some(value)
}

/// `bms_is_member` (bitmapset.c) for an attribute in a set offset by
/// `FirstLowInvalidHeapAttributeNumber` (the trigger's updated columns).
pub fn is_updated(set: *const pg_sys::Bitmapset, attnum: c_int) -> bool {
    if set.is_null() {
        return false;
    }
    let x = (attnum - pg_sys::FirstLowInvalidHeapAttributeNumber) as usize;
    let bits = pg_sys::BITS_PER_BITMAPWORD as usize;
    // SAFETY: a non-NULL Bitmapset has `nwords` words.
    let words = unsafe { (*set).words.as_slice((*set).nwords as usize) };
    words.get(x / bits).is_some_and(|w| w & (1 << (x % bits)) != 0)
}

/// `heap_modify_tuple_by_cols` (heaptuple.c): a copy of `tuple` with the
/// columns marked `true` in `cols` replaced (never by NULL).
pub fn replace(
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
    cols: &[(c_int, pg_sys::Datum, bool); 2],
) -> pg_sys::HeapTuple {
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
    // SAFETY: `tuple` and `desc` belong together; the arrays hold `n` valid
    // attribute numbers and by-value datums of their columns' types.
    unsafe {
        pg_sys::heap_modify_tuple_by_cols(
            tuple,
            desc,
            n as c_int,
            atts.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_mut_ptr(),
        )
    }
}

/// A relation's name (`RelationGetRelationName`).
pub fn relation_name(rel: pg_sys::Relation) -> String {
    // SAFETY: an open relation's rd_rel is valid and its relname a NameData.
    unsafe { CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()) }.to_string_lossy().into_owned()
}

/// A relation's schema name (a syscache lookup: error path only).
pub fn relation_schema(rel: pg_sys::Relation) -> String {
    // SAFETY: an open relation's rd_rel is valid; get_namespace_name returns
    // a palloc'd string or NULL.
    unsafe {
        let nsp = pg_sys::get_namespace_name((*(*rel).rd_rel).relnamespace);
        if nsp.is_null() {
            String::new()
        } else {
            CStr::from_ptr(nsp).to_string_lossy().into_owned()
        }
    }
}

/// A relation's OID (`RelationGetRelid`).
pub fn relid(rel: pg_sys::Relation) -> pg_sys::Oid {
    // SAFETY: an open relation.
    unsafe { (*rel).rd_id }
}

/// A relation's tuple descriptor (`RelationGetDescr`).
pub fn descriptor(rel: pg_sys::Relation) -> pg_sys::TupleDesc {
    // SAFETY: an open relation.
    unsafe { (*rel).rd_att }
}

/// The primary key's attribute numbers and types, in column order (from
/// the relcache's index bitmap: a cache miss or an error path only).
pub fn primary_key(rel: pg_sys::Relation) -> Vec<(c_int, pg_sys::Oid)> {
    // SAFETY: an open relation; the bitmap is palloc'd in the current context.
    let pk =
        unsafe { pg_sys::RelationGetIndexAttrBitmap(rel, pg_sys::IndexAttrBitmapKind::INDEX_ATTR_BITMAP_PRIMARY_KEY) };
    let attrs = attributes(descriptor(rel));
    let mut out = Vec::new();
    let mut x = -1;
    loop {
        // SAFETY: bms_next_member accepts NULL (empty) and its own bitmaps.
        x = unsafe { pg_sys::bms_next_member(pk, x) };
        if x < 0 {
            return out;
        }
        let att = x + pg_sys::FirstLowInvalidHeapAttributeNumber;
        out.push((att, attrs[att as usize - 1].atttypid));
    }
}

/// The table statistics count a row under: a partition's root.
pub fn partition_root(relid: pg_sys::Oid) -> pg_sys::Oid {
    // SAFETY: a syscache lookup of an existing relation (a cache miss only).
    if !unsafe { pg_sys::get_rel_relispartition(relid) } {
        return relid;
    }
    // SAFETY: pg_partition_root takes a regclass and returns one (or NULL).
    unsafe {
        pgrx::direct_function_call::<pg_sys::Oid>(pg_sys::pg_partition_root, &[pgrx::IntoDatum::into_datum(relid)])
    }
    .unwrap_or(relid)
}

/// A column's type, typmod and collation from the syscache (lsyscache.c's
/// `get_attnum` and `get_atttypetypmodcoll`), without SPI: None where the
/// table has no such (undropped, user) column.
pub fn column_type_mod(relid: pg_sys::Oid, name: &str) -> Option<(pg_sys::Oid, i32, pg_sys::Oid)> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: a syscache lookup by relation OID and a C string; 0 (not
    // found) for a missing or dropped column, no error.
    let attnum = unsafe { pg_sys::get_attnum(relid, cname.as_ptr()) };
    if attnum <= 0 {
        return None;
    }
    let (mut ty, mut typmod, mut coll) = (pg_sys::InvalidOid, -1, pg_sys::InvalidOid);
    // SAFETY: the attribute exists (found just above, in this transaction's
    // catalog snapshot); the three pointers are to locals.
    unsafe { pg_sys::get_atttypetypmodcoll(relid, attnum, &mut ty, &mut typmod, &mut coll) };
    Some((ty, typmod, coll))
}

/// Whether a collation compares equal only what is byte for byte equal
/// (lsyscache.c's `get_collation_isdeterministic`; none: yes).
pub fn deterministic(collation: pg_sys::Oid) -> bool {
    // SAFETY: a syscache lookup of a collation a column names (it exists:
    // a column depends on its collation).
    collation == pg_sys::InvalidOid || unsafe { pg_sys::get_collation_isdeterministic(collation) }
}

/// `(block,offset)`, as `tid` output prints an item pointer
/// (`ItemPointerGetBlockNumber` / `ItemPointerGetOffsetNumber`).
pub fn ctid_text(tuple: pg_sys::HeapTuple) -> String {
    // SAFETY: a valid heap tuple's t_self.
    let tid = unsafe { &(*tuple).t_self };
    let block = ((tid.ip_blkid.bi_hi as u32) << 16) | tid.ip_blkid.bi_lo as u32;
    format!("({},{})", block, tid.ip_posid)
}

/// A value as its type's output function writes it (error path only).
pub fn output(ty: pg_sys::Oid, value: pg_sys::Datum) -> String {
    // SAFETY: `value` is a datum of type `ty`; the output string is palloc'd.
    unsafe {
        let mut func = pg_sys::InvalidOid;
        let mut varlena = false;
        pg_sys::getTypeOutputInfo(ty, &mut func, &mut varlena);
        let s = pg_sys::OidOutputFunctionCall(func, value);
        CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}
