//! Aggregates with an `internal` transition state (nodeAgg.c's
//! `AggCheckCallContext`, and the bytea form a parallel aggregate passes
//! between processes, as numeric.c's `numeric_avg_serialize` does), a
//! composite result (funcapi.c's `get_call_result_type`), and a text
//! argument's bytes (varlena.h).

use crate::errors::{sqlstate, DbError, Result};
use pgrx::pg_sys;
use std::mem::size_of;

/// A plain-data transition state: copied byte for byte into and out of a
/// bytea, so it must hold no pointers.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes that `copy` produced is a
/// valid value (plain integers and floats).
pub unsafe trait PlainState: Copy {}

/// The transition state in argument `n`, if it is set.
///
/// # Safety
/// `fcinfo` is an aggregate support function's, whose argument `n` is an
/// `internal` state made by [`new_state`] for the same `T` (or NULL).
pub unsafe fn state_arg<T: PlainState>(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Option<*mut T> {
    // SAFETY: argument n exists (the function's SQL signature).
    unsafe { pgrx::fcinfo::pg_getarg_datum(fcinfo, n) }.map(|d| d.cast_mut_ptr::<T>())
}

/// A new state `init`, allocated in the aggregate's memory context, where
/// it lives as long as the group.
///
/// # Safety
/// `fcinfo` is the caller's.
pub unsafe fn new_state<T: PlainState>(fcinfo: pg_sys::FunctionCallInfo, init: T) -> Result<*mut T> {
    let mut context: pg_sys::MemoryContext = std::ptr::null_mut();
    // SAFETY: fcinfo is the caller's; the out-parameter points to a local.
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut context) } == 0 {
        return Err(DbError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "an aggregate's support function called outside an aggregate",
        ));
    }
    // SAFETY: MAXALIGNed memory of T's size in a live context; T is plain
    // data of alignment at most 8, written whole before any read.
    unsafe {
        let state = pg_sys::MemoryContextAlloc(context, size_of::<T>()).cast::<T>();
        state.write(init);
        Ok(state)
    }
}

/// A state as a bytea (a serialization function's result).
pub fn to_bytea<T: PlainState>(state: &T) -> pg_sys::Datum {
    let size = pg_sys::VARHDRSZ + size_of::<T>();
    // SAFETY: palloc'd `size` bytes in the current context, headed as a
    // varlena of that size, the state's bytes copied after the header.
    unsafe {
        let v = pg_sys::palloc(size).cast::<pg_sys::varlena>();
        pgrx::varlena::set_varsize_4b(v, size as i32);
        std::ptr::copy_nonoverlapping(
            (state as *const T).cast::<u8>(),
            v.cast::<u8>().add(pg_sys::VARHDRSZ),
            size_of::<T>(),
        );
        pg_sys::Datum::from(v)
    }
}

/// A state from its bytea (a deserialization function's argument), in the
/// current memory context: the one nodeAgg gives a partial row, freed with
/// it (a combine function copies the first of a group to keep it).
///
/// # Safety
/// `datum` is a valid, non-NULL bytea.
pub unsafe fn from_bytea<T: PlainState>(datum: pg_sys::Datum) -> Result<*mut T> {
    let bytes = unsafe { varlena_bytes(datum) };
    if bytes.len() != size_of::<T>() {
        return Err(DbError::new(sqlstate::INTERNAL_ERROR, "an aggregate state of the wrong size"));
    }
    // SAFETY: exactly size_of::<T>() bytes, read unaligned (any such bytes
    // are a valid T: PlainState) into MAXALIGNed memory of T's size.
    unsafe {
        let state = pg_sys::palloc(size_of::<T>()).cast::<T>();
        state.write(bytes.as_ptr().cast::<T>().read_unaligned());
        Ok(state)
    }
}

/// The bytes of a text (or any varlena) argument, detoasted if it must be.
///
/// # Safety
/// `datum` is a valid, non-NULL varlena; the bytes live as long as the
/// current memory context.
pub unsafe fn varlena_bytes<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    // SAFETY: the packed form keeps a short header in place (no copy); a
    // toasted value is copied into the current context.
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        std::slice::from_raw_parts(pgrx::varlena::vardata_any(v).cast::<u8>(), pgrx::varlena::varsize_any_exhdr(v))
    }
}

/// A row of the function's composite result type. The blessed descriptor
/// is looked up once per call site and kept in its `fn_extra` (a final
/// function runs once per group).
///
/// # Safety
/// `fcinfo` is the caller's, a function returning a named composite type
/// whose attributes match `values` and `nulls` in number and types.
pub unsafe fn composite(
    fcinfo: pg_sys::FunctionCallInfo,
    values: &mut [pg_sys::Datum],
    nulls: &mut [bool],
) -> Result<pg_sys::Datum> {
    // SAFETY: fcinfo and its flinfo are the caller's; fn_extra is ours to
    // set, and what we set lives in fn_mcxt, as long as the FmgrInfo.
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        let mut desc = (*flinfo).fn_extra.cast::<pg_sys::TupleDescData>();
        if desc.is_null() {
            let mut found: pg_sys::TupleDesc = std::ptr::null_mut();
            let class = pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut found);
            if class != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || found.is_null() {
                return Err(DbError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "a function returning a row called where its row type is unknown",
                ));
            }
            let old = pg_sys::MemoryContextSwitchTo((*flinfo).fn_mcxt);
            desc = pg_sys::BlessTupleDesc(pg_sys::CreateTupleDescCopy(found));
            pg_sys::MemoryContextSwitchTo(old);
            (*flinfo).fn_extra = desc.cast();
        }
        if (*desc).natts as usize != values.len() || values.len() != nulls.len() {
            return Err(DbError::new(sqlstate::DATATYPE_MISMATCH, "a row of the wrong number of columns for its type"));
        }
        let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        Ok(pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data))
    }
}
