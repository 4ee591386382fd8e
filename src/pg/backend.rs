//! Facts about the current backend and session (miscadmin.h, guc.h,
//! backend_status.h), read the way PostgreSQL's own code reads them.

use pgrx::pg_sys;
use pgrx::FromDatum;
use std::ffi::CStr;

mod unguarded {
    use pgrx::pg_sys;
    extern "C" {
        /// backend_status.c: the current statement's query id (0 when
        /// compute_query_id is off); reads MyBEEntry, cannot raise.
        pub fn pgstat_get_my_query_id() -> pg_sys::uint64;
    }
}

/// `MyDatabaseId`.
pub fn database() -> u32 {
    // SAFETY: a backend global, read in its own thread.
    u32::from(unsafe { pg_sys::MyDatabaseId })
}

/// `GetUserId()`: the role privileges are checked against.
pub fn user() -> u32 {
    // SAFETY: reads the backend's current user; cannot fail.
    u32::from(unsafe { pg_sys::GetUserId() })
}

/// `MyProcPid`.
pub fn pid() -> i32 {
    // SAFETY: a backend global, read in its own thread.
    unsafe { pg_sys::MyProcPid }
}

/// The `application_name` setting.
pub fn application_name() -> String {
    // SAFETY: the GUC's C string (never freed while the setting holds it),
    // or NULL before GUCs are set up.
    unsafe {
        let p = pg_sys::application_name;
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// The current statement's query id (`pgstat_get_my_query_id`).
pub fn query_id() -> u64 {
    // SAFETY: see the declaration; safe to call from any backend code.
    unsafe { unguarded::pgstat_get_my_query_id() }
}

/// A TimestampTz as SQL's timestamptz (None for 0, "never").
pub fn timestamptz(t: i64) -> Option<pgrx::datum::TimestampWithTimeZone> {
    // SAFETY: a TimestampTz passed by value.
    (t != 0).then(|| unsafe { pgrx::datum::TimestampWithTimeZone::from_datum(pg_sys::Datum::from(t), false) })?
}

/// May the current user SELECT from the relation? (false if it is gone)
pub fn may_select(relid: pg_sys::Oid) -> bool {
    // SAFETY: syscache lookups by OID; a missing relation answers false
    // (pg_class_aclcheck would raise for it, so existence is checked first).
    unsafe {
        pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::RELOID as i32,
            pg_sys::Datum::from(relid),
            0.into(),
            0.into(),
            0.into(),
        ) && pg_sys::pg_class_aclcheck(relid, pg_sys::GetUserId(), pg_sys::ACL_SELECT as pg_sys::AclMode)
            == pg_sys::AclResult::ACLCHECK_OK
    }
}
