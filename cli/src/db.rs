//! The connection (URL, DATABASE_URL or the libpq variables, TLS as libpq's
//! sslmode and sslrootcert) and the calls into the extension.

use crate::report::{Finding, Fix};
use crate::tls;
use postgres::config::{Host, SslMode};
use postgres::{Client, Config, NoTls};
use std::collections::HashMap;
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The oldest extension version whose functions this command calls.
const MIN_EXTENSION_VERSION: &str = "0.1.0";

pub fn connect(url: Option<&str>) -> Result<Client, String> {
    let (mut config, tls) = match url {
        Some(url) => {
            // sslmode and sslrootcert are ours to read (the driver knows only
            // three of the five modes); the rest is the driver's.
            let (rest, mode, root_cert) = tls::take_tls_params(url);
            let config = rest.parse::<Config>().map_err(|e| format!("invalid database URL: {e}"))?;
            (config, tls::Settings::resolve(mode, root_cert)?)
        }
        None => (from_libpq_env(), tls::Settings::resolve(None, None)?),
    };
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.application_name("check_consistency");
    let unix_only = config.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)));
    let host = config
        .get_hosts()
        .iter()
        .find_map(|h| match h {
            Host::Tcp(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let failed = |e: postgres::Error, roots: Option<&str>| {
        let text = chain(&e);
        match tls::explain(&text, tls.mode, roots, &host) {
            Some(why) => format!("could not connect to the database: {why} ({text})"),
            None => format!("could not connect to the database: {text}"),
        }
    };
    match tls::plan(&tls, unix_only)? {
        tls::Plan::Plain => {
            config.ssl_mode(SslMode::Disable);
            config.connect(NoTls).map_err(|e| failed(e, None))
        }
        tls::Plan::Tls { config: tls_config, required, roots } => {
            config.ssl_mode(if required { SslMode::Require } else { SslMode::Prefer });
            config.connect(MakeRustlsConnect::new(*tls_config)).map_err(|e| failed(e, roots.as_deref()))
        }
    }
}

/// The libpq environment: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE,
/// with libpq's defaults (Debian's socket directory, the login name).
fn from_libpq_env() -> Config {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut config = Config::new();
    let host = var("PGHOST").unwrap_or_else(|| {
        if std::path::Path::new("/var/run/postgresql").is_dir() {
            "/var/run/postgresql".into()
        } else {
            "localhost".into()
        }
    });
    for h in host.split(',') {
        config.host(h);
    }
    if let Some(port) = var("PGPORT").and_then(|p| p.parse().ok()) {
        config.port(port);
    }
    let user = var("PGUSER").or_else(|| var("USER")).unwrap_or_else(|| "postgres".into());
    config.dbname(&var("PGDATABASE").unwrap_or_else(|| user.clone()));
    config.user(&user);
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
    }
    if let Some(timeout) = var("PGCONNECT_TIMEOUT").and_then(|t| t.parse().ok()) {
        config.connect_timeout(Duration::from_secs(timeout));
    }
    config
}

/// An error with its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

pub fn server(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("server error {}: {}", db.code().code(), db.message()),
        None => chain(&e),
    }
}

pub fn require_extension(client: &mut Client) -> Result<(), String> {
    let row = client
        .query_opt(
            "SELECT e.extversion, current_database() FROM pg_extension e WHERE e.extname = 'motofinai_consistency'",
            &[],
        )
        .map_err(server)?;
    let Some(row) = row else {
        let db: String = client.query_one("SELECT current_database()", &[]).map_err(server)?.get(0);
        return Err(format!(
            "database \"{db}\" does not have the motofinai_consistency extension (run CREATE EXTENSION motofinai_consistency)"
        ));
    };
    let version: String = row.get(0);
    if numbers(&version) < numbers(MIN_EXTENSION_VERSION) {
        return Err(format!(
            "the motofinai_consistency extension is version {version}; this command needs {MIN_EXTENSION_VERSION} or later \
             (run ALTER EXTENSION motofinai_consistency UPDATE)"
        ));
    }
    Ok(())
}

fn numbers(version: &str) -> Vec<u64> {
    version.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok()).collect()
}

pub fn findings(client: &mut Client, function: &str, id: Option<i64>) -> Result<Vec<Finding>, String> {
    let sql = format!("SELECT severity, code, entity, entity_id, message, details FROM {function}");
    let rows = match id {
        Some(id) => client.query(&sql, &[&id]),
        None => client.query(&sql, &[]),
    }
    .map_err(server)?;
    Ok(rows.iter().map(finding).collect())
}

/// Each code's family (system, loan, payment, inventory), by code and
/// entity (motofinai.finding_codes(): one code may belong to two families,
/// told apart by what it names).
pub fn code_families(client: &mut Client) -> Result<HashMap<(String, String), String>, String> {
    let rows = client.query("SELECT code, entity, family FROM motofinai.finding_codes()", &[]).map_err(server)?;
    Ok(rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect())
}

fn finding(r: &postgres::Row) -> Finding {
    Finding {
        severity: r.get(0),
        code: r.get(1),
        entity: r.get(2),
        entity_id: r.get(3),
        message: r.get(4),
        details: r.get(5),
    }
}

/// fix_consistency: planned, or applied in one transaction (the extension
/// re-checks each loan before it returns; a loan whose repairs did not hold
/// is rolled back alone and its rows carry a note). Extensions before the
/// note column answer without one.
pub fn fixes(client: &mut Client, scope: &str, id: Option<i64>, apply: bool) -> Result<Vec<Fix>, String> {
    let mut tx = client.transaction().map_err(server)?;
    let rows = tx
        .query(
            "SELECT code, entity, entity_id, summary, changes, to_jsonb(f) ->> 'note' \
               FROM motofinai.fix_consistency($1, $2, $3) f",
            &[&scope, &id, &apply],
        )
        .map_err(server)?;
    tx.commit().map_err(server)?;
    Ok(rows
        .iter()
        .map(|r| Fix {
            code: r.get(0),
            entity: r.get(1),
            entity_id: r.get(2),
            summary: r.get(3),
            changes: r.get(4),
            note: r.get(5),
        })
        .collect())
}

/// Record a run of `scope` (run_check) and return its findings that are new
/// since the previous run of the scope, and those it found resolved.
pub fn since_last(client: &mut Client, scope: &str) -> Result<(Vec<Finding>, Vec<Finding>), String> {
    let mut tx = client.transaction().map_err(server)?;
    let run: i64 = tx.query_one("SELECT id FROM motofinai.run_check($1)", &[&scope]).map_err(server)?.get(0);
    let new = tx
        .query(
            "SELECT f.severity, f.code, f.entity, f.entity_id, f.message, f.details \
               FROM motofinai.check_runs r, jsonb_to_recordset(r.findings) \
                    AS f(severity text, code text, entity text, entity_id bigint, message text, details jsonb) \
              WHERE r.id = $1 AND EXISTS (SELECT FROM motofinai.finding_history h \
                     WHERE h.first_run = r.id AND h.code = f.code AND h.entity = f.entity \
                       AND h.entity_id IS NOT DISTINCT FROM f.entity_id)",
            &[&run],
        )
        .map_err(server)?;
    let resolved = tx
        .query(
            "SELECT severity, code, entity, entity_id, message, coalesce(details, '{}'::jsonb) FROM motofinai.finding_history \
              WHERE resolved_run = $1 ORDER BY severity, code, entity_id",
            &[&run],
        )
        .map_err(server)?;
    tx.commit().map_err(server)?;
    Ok((new.iter().map(finding).collect(), resolved.iter().map(finding).collect()))
}
