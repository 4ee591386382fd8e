//! motofinai_consistency: the Motofinai financing system's concurrency control
//! and consistency checking, inside PostgreSQL.
//!
//! This file only wires the modules together (README, "Layout").

mod catalog;
mod checks;
mod enforcement;
mod errors;
mod gucs;
mod monitoring;
mod pg;
mod repair;
mod touched;
mod tracking;
mod versioning;

::pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "config", bootstrap);
pgrx::extension_sql_file!(
    "../sql/check_runs.sql",
    name = "check_runs",
    requires = [
        checks::check_findings,
        checks::check_loans,
        checks::finding::finding_codes,
        monitoring::alerts::send_pending_alerts_sql
    ]
);
pgrx::extension_sql_file!(
    "../sql/monitoring.sql",
    name = "monitoring",
    requires = [
        "conflict_stats_view",
        monitoring::alerts::send_pending_alerts_sql,
        monitoring::lock_timeouts,
        monitoring::hot_rows::hot_rows
    ]
);
pgrx::extension_sql_file!(
    "../sql/unqualified.sql",
    name = "unqualified",
    requires = [
        checks::check_loan_one,
        checks::check_loan_all,
        checks::check_payment_one,
        checks::check_payment_all,
        checks::check_inventory_one,
        checks::check_inventory_all,
        checks::check_system_consistency,
        checks::check_quick_consistency,
        checks::report::consistency_report,
    ]
);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::register();
    monitoring::store::init();
    versioning::trigger::register_invalidation();
    touched::register_callbacks();
    enforcement::register_callbacks();
    tracking::register_callbacks();
    checks::tables::register_callbacks();
}

/// Hooks for `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'motofinai_consistency'"]
    }
}
