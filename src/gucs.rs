//! Every setting (GUC) the extension declares, in one place.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::{CStr, CString};

/// `motofinai.tables_schema`: where the Motofinai tables are.
pub static TABLES_SCHEMA: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"public"));

/// The default of `motofinai.blocking_codes`: the loan family's error codes,
/// as the finding catalogue marks them (a test checks the two agree).
pub const DEFAULT_BLOCKING_CODES: &CStr = c"motor_missing,principal_mismatch,schedule_total_mismatch,overpaid,\
completed_not_paid,schedule_paid_without_payment,payment_not_applied,unapproved_motor_financed";

/// `motofinai.blocking_codes`: the codes that make enforcement roll back.
pub static BLOCKING_CODES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(DEFAULT_BLOCKING_CODES));

/// `motofinai.alert_on_errors`: 'new' (errors a run found that the run
/// before did not) or 'all' (every run with errors) raise check_errors.
pub static ALERT_ON_ERRORS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"new"));

/// Rows tracked per table and bucket by the hot-row statistics, at most this.
pub const MAX_HOT_ROWS: usize = 16;

pub static HOT_ROWS: GucSetting<i32> = GucSetting::<i32>::new(MAX_HOT_ROWS as i32);
pub static CONFLICT_ALERT_THRESHOLD: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static CONFLICT_ALERT_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static LOCK_WAIT_ALERT_MS: GucSetting<i32> = GucSetting::<i32>::new(5000);
/// Entries the conflict log keeps (at most `monitoring::log::LOG_MAX`).
pub static CONFLICT_LOG_SIZE: GucSetting<i32> = GucSetting::<i32>::new(100);

/// An integer setting: name, short and long description, setting, min, max, context, flags.
type IntGuc = (&'static CStr, &'static CStr, &'static CStr, &'static GucSetting<i32>, i32, i32, GucContext, GucFlags);

/// Called from _PG_init.
pub fn register() {
    GucRegistry::define_string_guc(
        c"motofinai.tables_schema",
        c"Schema that holds the Motofinai tables the consistency checks read.",
        c"Defaults to public, where Django creates them.",
        &TABLES_SCHEMA,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"motofinai.blocking_codes",
        c"Finding codes that make motofinai_consistency roll a transaction back.",
        c"Comma-separated; the default is the loan family's error codes. Warnings never block.",
        &BLOCKING_CODES,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"motofinai.alert_on_errors",
        c"Which recorded check runs raise a check_errors alert: 'new' (new errors only) or 'all'.",
        c"",
        &ALERT_ON_ERRORS,
        GucContext::Userset,
        GucFlags::default(),
    );
    let ints: [IntGuc; 4] = [
        (
            c"motofinai.conflict_alert_threshold",
            c"Conflicts on one table within motofinai.conflict_alert_window that raise a conflict_rate alert.",
            c"Sent on channel motofinai_alerts by the next transaction that commits a versioned update.",
            &CONFLICT_ALERT_THRESHOLD,
            1,
            i32::MAX,
            GucContext::Userset,
            GucFlags::default(),
        ),
        (
            c"motofinai.conflict_alert_window",
            c"The window, in minutes (1 to 60), over which conflicts are counted for the conflict_rate alert.",
            c"",
            &CONFLICT_ALERT_WINDOW,
            1,
            60,
            GucContext::Userset,
            GucFlags::UNIT_MIN,
        ),
        (
            c"motofinai.hot_rows",
            c"Rows tracked per versioned table and 5-minute bucket for the hot-row statistics.",
            c"At most 16; more distinct rows than this in a bucket make the counts upper bounds.",
            &HOT_ROWS,
            1,
            MAX_HOT_ROWS as i32,
            GucContext::Sighup,
            GucFlags::default(),
        ),
        (
            c"motofinai.lock_wait_alert_ms",
            c"A lock wait on a versioned table this long, observed by detect_deadlocks(), is sent as an alert.",
            c"In milliseconds, on channel motofinai_alerts.",
            &LOCK_WAIT_ALERT_MS,
            0,
            i32::MAX,
            GucContext::Userset,
            GucFlags::UNIT_MS,
        ),
    ];
    for (name, short, long, setting, min, max, context, flags) in ints {
        GucRegistry::define_int_guc(name, short, long, setting, min, max, context, flags);
    }
    // A server-start setting can only be declared while the library is
    // preloaded, which is also the only time the log exists.
    // SAFETY: a backend global, read in _PG_init.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_int_guc(
            c"motofinai.conflict_log_size",
            c"Conflicts and observed would-be conflicts kept in motofinai.recent_conflicts (at most 1000).",
            c"The log lives in shared memory sized for 1000 entries; set at server start.",
            &CONFLICT_LOG_SIZE,
            1,
            crate::monitoring::log::LOG_MAX as i32,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
}

/// A string setting's value (`None` when unset).
pub fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting.get().map(|c| c.to_string_lossy().into_owned())
}
