//! motofinai_consistency: the Motofinai financing system's concurrency control
//! and consistency checking, inside PostgreSQL.
//!
//! This file only wires the modules together.

mod catalog;
mod errors;
mod versioning;

::pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "config", bootstrap);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    versioning::trigger::register_invalidation();
}

/// Hooks for `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
