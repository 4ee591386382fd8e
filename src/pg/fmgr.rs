//! The function manager's calling convention (fmgr.h): C-language functions
//! declared with `PG_FUNCTION_INFO_V1`, for the triggers and the aggregate
//! transition functions that must not pay pgrx's argument conversions.

/// Declare a C-language (V1) function (`$finfo` is its `pg_finfo_`
/// record, fmgr.h's `PG_FUNCTION_INFO_V1`): the body runs under pgrx's guard
/// and returns `Result<Datum>`; an error is raised by `errors::finish` with
/// its schema, table, column and constraint fields.
macro_rules! v1_function {
    ($(#[$doc:meta])* $name:ident, $finfo:ident, |$fcinfo:ident| $body:expr) => {
        #[no_mangle]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        $(#[$doc])*
        ///
        /// # Safety
        /// Called by the fmgr with a valid `fcinfo`.
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name($fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
            // Defined outside the unsafe block: the body's own unsafe
            // operations carry their own blocks and notes.
            let body = || $body;
            // SAFETY: pgrx's guard turns a panic into a PostgreSQL error at
            // this boundary, which is the fmgr's call.
            $crate::errors::finish(|| unsafe { pgrx::pgrx_extern_c_guard(body) })
        }
    };
}
pub(crate) use v1_function;
