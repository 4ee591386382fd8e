//! The command against a real PostgreSQL 15 server with the extension
//! installed. scripts/test.sh starts a throwaway cluster and points these
//! tests at it through PGHOST and PGPORT (as the postgres user); each test
//! binary builds its own databases there from the project's DDL and the
//! dataset generator (2,000 loans, one injected case of every defect).

use postgres::{Client, NoTls};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const DB: &str = "mfc_cli";
const FIX_DB: &str = "mfc_cli_fix";
const BLOCKED_DB: &str = "mfc_cli_blocked";
const HISTORY_DB: &str = "mfc_cli_history";
const HTML_DB: &str = "mfc_cli_html";
const NO_EXTENSION_DB: &str = "mfc_cli_noext";
const OLD_EXTENSION_DB: &str = "mfc_cli_old";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn server() -> (String, String) {
    let host = std::env::var("PGHOST").expect("PGHOST must point at a test cluster (scripts/test.sh starts one)");
    let port = std::env::var("PGPORT").unwrap_or_else(|_| "5432".into());
    (host, port)
}

fn client(db: &str) -> Client {
    if db != "postgres" {
        setup();
    }
    let (host, port) = server();
    Client::connect(&format!("host={host} port={port} user=postgres dbname={db}"), NoTls).expect("connect")
}

fn psql(db: &str, args: &[&str]) {
    let (host, port) = server();
    let status = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", &host, "-p", &port, "-U", "postgres", "-d", db])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("psql");
    assert!(status.success(), "psql {args:?} failed");
}

/// Build a database with the Motofinai tables, generated data with one case
/// of every defect, and (unless `extension` is false) the extension.
fn build(db: &str, extension: bool) {
    let mut admin = client("postgres");
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    let fixtures = root().join("tests");
    psql(db, &["-f", fixtures.join("fixtures/motofinai_schema.sql").to_str().unwrap()]);
    if extension {
        psql(db, &["-c", "CREATE EXTENSION motofinai_consistency"]);
        psql(db, &["-f", fixtures.join("generator/generate.sql").to_str().unwrap()]);
        psql(
            db,
            &["-c", "SELECT motofinai_gen.generate(2000)", "-c", "SELECT motofinai_gen.inject(1)", "-c", "ANALYZE"],
        );
    }
}

fn setup() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        build(DB, true);
        build(FIX_DB, true);
        build(BLOCKED_DB, true);
        build(HISTORY_DB, true);
        build(HTML_DB, true);
        build(NO_EXTENSION_DB, false);
        // An installation that reports an older extension version.
        build(OLD_EXTENSION_DB, false);
        psql(
            OLD_EXTENSION_DB,
            &[
                "-c",
                "CREATE EXTENSION motofinai_consistency",
                "-c",
                "UPDATE pg_extension SET extversion = '0.0.9' WHERE extname = 'motofinai_consistency'",
            ],
        );
    });
}

/// Run the command on a database; stdin is not a terminal.
fn run(db: &str, args: &[&str]) -> Output {
    setup();
    let (host, port) = server();
    Command::new(env!("CARGO_BIN_EXE_check_consistency"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("PGHOST", host)
        .env("PGPORT", port)
        .env("PGUSER", "postgres")
        .env("PGDATABASE", db)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run check_consistency")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected").join(name)).unwrap()
}

/// An id the generator made with no finding (a pending loan, id % 20 = 0).
const CLEAN_LOAN: &str = "1980";

#[test]
fn quick_check_is_the_default_and_prints_the_seed_format() {
    let o = run(DB, &[]);
    assert_eq!(stdout(&o), expected("quick.txt"));
    assert_eq!(o.status.code(), Some(1), "errors were found");
    assert_eq!(stdout(&run(DB, &["--quick"])), stdout(&o));
}

#[test]
fn a_clean_loan_has_no_issues_and_exits_0() {
    let o = run(DB, &["--loan", CLEAN_LOAN]);
    assert_eq!(
        stdout(&o),
        format!(
            "Starting consistency checks...\n\nChecking loan {CLEAN_LOAN}...\n✓ No issues found\n\n{}\n\
             Consistency check completed\nErrors found: 0\nWarnings found: 0\n",
            "=".repeat(50)
        )
    );
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn loan_payment_and_motor_scopes_report_their_findings() {
    let mut db = client(DB);
    let mut id = |code: &str| -> i64 {
        db.query_one(
            "SELECT entity_id FROM motofinai_gen.expected WHERE code = $1 ORDER BY entity_id LIMIT 1",
            &[&code],
        )
        .unwrap()
        .get(0)
    };
    let (loan, payment, motor) = (id("overpaid"), id("future_payment_date"), id("invalid_vin"));
    let warning_only = id("submitter_inactive");
    let o = run(DB, &["--loan", &loan.to_string()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains(&format!("Checking loan {loan}...\n✗ 1 error(s) found:\n    - Total paid (")), "{text}");
    assert!(
        text.ends_with("Errors found: 1\nWarnings found: 0\n\nRun with --fix to attempt automatic fixes\n"),
        "{text}"
    );

    let o = run(DB, &["--payment", &payment.to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(&format!(
        "Checking payment {payment}...\n✗ 1 error(s) found:\n    - Payment date is in the future\n"
    )));

    let o = run(DB, &["--motor", &motor.to_string()]);
    assert_eq!(o.status.code(), Some(0), "a warning alone exits 0");
    assert!(stdout(&o).contains(&format!(
        "Checking motor {motor}...\n⚠ 1 warning(s) found:\n    - VIN VIN-{motor} is not a valid 17-character VIN\n"
    )));

    let o = run(DB, &["--loan", &warning_only.to_string()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!stdout(&o).contains("--fix"), "no fix hint without errors");

    let o = run(DB, &["--loan", "99999999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("✗ 1 error(s) found:\n    - Loan 99999999 not found\n"));
}

#[test]
fn all_runs_every_phase_and_limit_cuts_the_lists() {
    let o = run(DB, &["--all", "--limit", "2"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    for header in
        ["Checking system structure...", "Checking all loans...", "Checking all payments...", "Checking inventory..."]
    {
        assert!(text.contains(&format!("\n{header}\n")), "missing {header}: {text}");
    }
    let mut db = client(DB);
    let report: Value = db.query_one("SELECT consistency_report('system')", &[]).unwrap().get(0);
    let errors = report["errors"].as_array().unwrap().len();
    let warnings = report["warnings"].as_array().unwrap().len();
    assert!(text.contains(&format!("Errors found: {errors}\nWarnings found: {warnings}\n")), "{text}");
    // 22 loan-family errors, two listed: "... and 20 more".
    let loans: i64 =
        db.query_one("SELECT count(*) FROM check_loan_consistency() WHERE severity = 'error'", &[]).unwrap().get(0);
    assert!(text.contains(&format!("✗ {loans} error(s) found:\n    - ")), "{text}");
    assert!(text.contains(&format!("    ... and {} more\n", loans - 2)), "{text}");
    assert!(stderr(&o).is_empty(), "no progress output without a terminal");
}

#[test]
fn json_is_one_document_in_the_seed_format_with_counts_and_codes() {
    let o = run(DB, &["--all", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    let mut db = client(DB);
    let report: Value = db.query_one("SELECT consistency_report('system')", &[]).unwrap().get(0);
    assert_eq!(doc["errors"], report["errors"]);
    assert_eq!(doc["warnings"], report["warnings"]);
    assert_eq!(doc["counts"]["errors"].as_u64().unwrap() as usize, report["errors"].as_array().unwrap().len());
    assert_eq!(doc["codes"]["duplicate_vin"], 2);
    assert_eq!(doc["codes"]["future_payment_date"], 1);
    let finding = doc["findings"].as_array().unwrap().iter().find(|f| f["code"] == "overpaid").unwrap();
    assert_eq!(finding["entity"], "loan");
    assert!(finding["details"]["paid"].is_number());
    // One statement (the system check) split by the codes' families: each
    // phase has what its family's own function finds, and the time is the
    // statement's.
    let phases = doc["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 4);
    for (phase, function) in phases.iter().zip([
        "motofinai.check_structural_consistency()",
        "check_loan_consistency()",
        "check_payment_consistency()",
        "check_inventory_consistency()",
    ]) {
        let n: i64 = db.query_one(&format!("SELECT count(*) FROM {function}"), &[]).unwrap().get(0);
        assert_eq!(phase["findings"].as_i64(), Some(n), "{phase} against {function}");
        assert!(phase["ms"].is_null(), "{phase}");
    }
    assert!(doc["ms"].as_u64().is_some(), "the statement's time");
}

#[test]
fn all_verbose_times_its_one_statement_once() {
    let text = stdout(&run(DB, &["--all", "--verbose", "--limit", "1"]));
    assert!(!text.contains(" ms)\n"), "no phase has a time of its own: {text}");
    assert_eq!(text.matches(" ms, the four phases in one statement)\n").count(), 1, "{text}");
    let at = text.find(" ms, the four phases in one statement)\n").unwrap();
    assert!(at > text.find("\nChecking inventory...\n").unwrap(), "after the last phase: {text}");
}

#[test]
fn verbose_shows_codes_details_and_timings() {
    let o = run(DB, &["--verbose"]);
    let text = stdout(&o);
    assert!(text.contains("    - [orphaned_rows] 1 orphaned row(s) in payments_payment"), "{text}");
    assert!(text.contains("\"first_ids\""), "{text}");
    assert!(text.contains(" ms)\n"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colors off a terminal");
    assert!(!stdout(&run(DB, &["--no-color", "--verbose"])).contains('\u{1b}'));
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["--loan", "1", "--all"][..], &["--payment", "abc"], &["--yes"], &["--nope"]] {
        let o = run(DB, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn an_unreachable_server_exits_2_with_a_clear_message() {
    let o = run(DB, &["--database-url", "postgresql://postgres@127.0.0.1:1/mfc"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("check_consistency: could not connect to the database:"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[test]
fn a_database_without_the_extension_exits_2() {
    let o = run(NO_EXTENSION_DB, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "check_consistency: database \"{NO_EXTENSION_DB}\" does not have the motofinai_consistency extension \
                 (run CREATE EXTENSION motofinai_consistency)\n"
        )
    );
}

#[test]
fn an_older_extension_version_exits_2() {
    let o = run(OLD_EXTENSION_DB, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o)
            .starts_with("check_consistency: the motofinai_consistency extension is version 0.0.9; this command needs"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_url_and_database_url_select_the_database() {
    let (host, port) = server();
    let url = format!("postgresql://postgres@{}:{port}/{DB}", host.replace('/', "%2F"));
    let o = run(NO_EXTENSION_DB, &["-d", &url, "--loan", CLEAN_LOAN]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_check_consistency"))
        .args(["--loan", CLEAN_LOAN])
        .env("DATABASE_URL", &url)
        .env("PGDATABASE", NO_EXTENSION_DB)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The fixable findings (code, id) as the extension sees them.
fn fixable(db: &mut Client) -> Vec<(String, i64)> {
    db.query("SELECT code, entity_id FROM motofinai.fix_consistency('system') ORDER BY 1, 2", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn fix_round_trip() {
    let mut db = client(FIX_DB);
    let before = fixable(&mut db);
    // One stale overdue status, one unapplied payment, one paid loan left active.
    assert_eq!(before.len(), 3, "{before:?}");
    let snapshot = "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM loans_paymentschedule t";
    let data: String = db.query_one(snapshot, &[]).unwrap().get(0);

    // Without a terminal and without --yes: the plan only.
    let o = run(FIX_DB, &["--all", "--fix"]);
    let text = stdout(&o);
    let planned = text.split("\nPlanned fixes:\n").nth(1).expect("planned").split("\n\n").next().unwrap();
    assert_eq!(planned.lines().count(), 3, "{text}");
    assert!(text.contains("\nFixes not applied: no terminal to confirm on; pass --yes to apply them.\n"), "{text}");
    assert_eq!(fixable(&mut db), before, "a dry run changes nothing");
    let unchanged: String = db.query_one(snapshot, &[]).unwrap().get(0);
    assert_eq!(unchanged, data);

    // --yes applies exactly the planned repairs, then re-checks.
    let o = run(FIX_DB, &["--all", "--fix", "--yes"]);
    let text = stdout(&o);
    let applied = text.split("\nApplied fixes:\n").nth(1).expect("applied").split("\n\n").next().unwrap();
    assert_eq!(applied.lines().count(), 3, "{text}");
    for (code, id) in &before {
        assert!(
            applied.contains(&format!("[{code}] ")) && applied.contains(&format!(" {id}: ")),
            "{code} {id}: {applied}"
        );
    }
    assert!(text.contains("\nRe-checking after fixes...\n"), "{text}");
    assert!(fixable(&mut db).is_empty());
    let remaining: i64 = db
        .query_one(
            "SELECT count(*) FROM check_system_consistency() \
             WHERE code IN ('overdue_status_stale', 'payment_not_applied', 'paid_not_completed')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(remaining, 0);

    // A second run finds nothing to fix.
    let o = run(FIX_DB, &["--all", "--fix", "--yes"]);
    assert!(stdout(&o).contains("\nNo automatic fixes available.\n"));
}

/// Under enforcement, a loan whose repair would leave it with a blocking
/// finding is not repaired: the others are, and the output says which loan
/// blocked, why, and what to do.
#[test]
fn fix_blocked_loan_is_reported_and_the_others_applied() {
    let mut db = client(BLOCKED_DB);
    let row = db
        .query_one(
            "SELECT entity_id, (details ->> 'loan_id')::bigint, (details ->> 'payment_id')::bigint \
               FROM check_system_consistency() WHERE code = 'payment_not_applied'",
            &[],
        )
        .unwrap();
    let (schedule, loan, payment): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    db.batch_execute(&format!(
        "SET session_replication_role = replica; \
         UPDATE payments_payment SET amount = amount + 100000 WHERE id = {payment}; \
         RESET session_replication_role; SELECT motofinai.enforce_consistency();"
    ))
    .unwrap();

    let o = run(BLOCKED_DB, &["--all", "--fix", "--yes"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "errors remain: {text}");
    let applied = text.split("\nApplied fixes:\n").nth(1).expect("applied").split("\n\n").next().unwrap();
    assert_eq!(applied.lines().count(), 2, "the two other loans' repairs: {text}");
    let blocked = text.split("\nBlocked fixes (not applied):\n").nth(2).expect("blocked after applying");
    assert!(blocked.starts_with(&format!("    - [payment_not_applied] schedule {schedule}: ")), "{text}");
    assert!(
        blocked.contains(&format!("\n    ! loan {loan} not repaired: it has the blocking finding overpaid")),
        "{text}"
    );
    assert!(blocked.contains(&format!("check_consistency --loan {loan}")), "{text}");
    let left: Vec<String> = db
        .query("SELECT code FROM motofinai.fix_consistency('system') ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ["payment_not_applied"], "only the blocked repair is left");
}

/// --changed checks what changed since the last recorded run; --since-last
/// prints only what is new and what was resolved; accepted findings are
/// shown apart and never counted.
#[test]
fn changed_since_last_and_accepted() {
    let mut db = client(HISTORY_DB);
    db.batch_execute("SELECT motofinai.track_changes()").unwrap();
    let o = run(HISTORY_DB, &["--all", "--since-last"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "the first run's errors are all new: {text}");
    assert!(text.contains("\nNew since the last run:\n✗ "), "{text}");

    // A loan broken and one repaired between runs.
    let broken: i64 = db
        .query_one("SELECT min(entity_id) FROM check_loan_consistency() WHERE code = 'principal_mismatch'", &[])
        .unwrap()
        .get(0);
    db.batch_execute(&format!(
        "UPDATE loans_loanapplication SET principal_amount = loan_amount - down_payment WHERE id = {broken}; \
         UPDATE loans_loanapplication SET principal_amount = principal_amount + 7 WHERE id = 23;"
    ))
    .unwrap();
    let o = run(HISTORY_DB, &["--changed", "--since-last"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let new = text.split("New since the last run:\n").nth(1).expect("new").split("\n\n").next().unwrap();
    assert!(new.contains("Principal (") && new.contains("does not equal loan amount"), "{text}");
    let gone = text.split("Resolved since the last run:\n").nth(1).expect("resolved").split("\n\n").next().unwrap();
    assert!(gone.contains("Principal ("), "the repaired loan's finding is gone: {text}");
    let o = run(HISTORY_DB, &["--changed", "--since-last"]);
    assert!(stdout(&o).contains("New since the last run:\n✓ No issues found"), "{}", stdout(&o));
    assert_eq!(o.status.code(), Some(0));

    // Accepted: listed apart, not counted.
    db.batch_execute("SELECT motofinai.accept_finding('principal_mismatch', 'loan', 23, 'promo rounding')").unwrap();
    let o = run(HISTORY_DB, &["--loan", "23"]);
    let text = stdout(&o);
    assert!(text.contains("(1 accepted finding(s) not counted; --all-findings lists them)"), "{text}");
    assert!(text.contains("Errors found: 0\n"), "{text}");
    let o = run(HISTORY_DB, &["--loan", "23", "--all-findings"]);
    assert!(stdout(&o).contains("◦ 1 accepted finding(s), not counted:"), "{}", stdout(&o));
    let o = run(HISTORY_DB, &["--loan", "23", "--since-last"]);
    assert_eq!(o.status.code(), Some(2), "--since-last needs a recorded scope");
}

/// --html writes one self-contained file: the summary, the trend chart as
/// inline SVG (a bar for today's run), the findings table; no script, no
/// external resource.
#[test]
fn html_report_is_self_contained() {
    let mut db = client(HTML_DB);
    db.batch_execute("SELECT motofinai.run_check('system')").unwrap();
    let file = std::env::temp_dir().join(format!("mfc-report-{}.html", std::process::id()));
    let o = run(HTML_DB, &["--all", "--html", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let page = std::fs::read_to_string(&file).expect("the report was written");
    std::fs::remove_file(&file).ok();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<svg id=\"trend-chart\""), "the chart");
    assert!(page.contains("<rect class=\"bar bar-error\""), "today's errors as a bar");
    assert!(page.contains("<table id=\"findings-table\">"), "the findings");
    assert!(page.contains("<th scope=\"col\">Severity</th>"), "table headers for screen readers");
    assert!(!page.contains("<script"), "no script");
    let external = page.matches("http").count();
    assert_eq!(external, page.matches("http://www.w3.org/2000/svg").count(), "no external resource");
    let rows = page.matches("<tr class=\"finding ").count();
    let text = stdout(&o);
    let errors: usize = text.split("Errors found: ").nth(1).unwrap().lines().next().unwrap().parse().unwrap();
    let warnings: usize = text.split("Warnings found: ").nth(1).unwrap().lines().next().unwrap().parse().unwrap();
    assert!(rows >= errors + warnings, "every finding is in the table ({rows} rows)");
}

/// Not the command, but the server it reports on: run_check() records a run
/// and a session listening on motofinai_alerts receives the alert.
#[test]
fn run_check_records_a_run_and_alerts_a_listener() {
    use postgres::fallible_iterator::FallibleIterator;
    let mut listener = client(DB);
    listener.batch_execute("LISTEN motofinai_alerts").unwrap();
    let mut db = client(DB);
    let row = db.query_one("SELECT id, scope, errors, warnings FROM motofinai.run_check('quick')", &[]).unwrap();
    let (id, scope, errors): (i64, String, i32) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(scope, "quick");
    assert_eq!(errors, 4, "the quick check's errors on this data");
    let stored: i64 = db.query_one("SELECT count(*) FROM motofinai.check_runs WHERE id = $1", &[&id]).unwrap().get(0);
    assert_eq!(stored, 1);
    let mut notifications = listener.notifications();
    let note = notifications
        .timeout_iter(std::time::Duration::from_secs(10))
        .find(|n| {
            let payload: Value = serde_json::from_str(n.payload()).unwrap();
            Ok(payload["run_id"] == id)
        })
        .unwrap()
        .expect("an alert for the run");
    let payload: Value = serde_json::from_str(note.payload()).unwrap();
    assert_eq!(note.channel(), "motofinai_alerts");
    assert_eq!(payload["alert"], "check_errors");
    assert_eq!(payload["errors"], 4);
    assert_eq!(payload["codes"]["duplicate_vin"], 2);
}

/// Not the command either: a lock wait on a versioned table longer than
/// motofinai.lock_wait_alert_ms, observed by detect_deadlocks(), is alerted.
#[test]
fn a_lock_wait_on_a_versioned_table_is_alerted() {
    use postgres::fallible_iterator::FallibleIterator;
    let mut setup_db = client(DB);
    setup_db
        .batch_execute(
            "DROP TABLE IF EXISTS alert_held; CREATE TABLE alert_held (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0); \
             INSERT INTO alert_held VALUES (1); SELECT motofinai.enable_versioning('alert_held')",
        )
        .unwrap();
    let mut holder = client(DB);
    let mut tx = holder.transaction().unwrap();
    tx.execute("SELECT motofinai.get_for_update('alert_held', 1)", &[]).unwrap();
    let waiter = std::thread::spawn(|| {
        client(DB).execute("UPDATE alert_held SET v = 1 WHERE id = 1", &[]).unwrap();
    });
    let mut watcher = client(DB);
    watcher.batch_execute("LISTEN motofinai_alerts; SET motofinai.lock_wait_alert_ms = 0").unwrap();
    let mut seen = false;
    for _ in 0..100 {
        let waits: i32 = watcher
            .query_one("SELECT jsonb_array_length(motofinai.detect_deadlocks('alert_held') -> 'lock_waits')", &[])
            .unwrap()
            .get(0);
        if waits == 1 {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(seen, "the blocked UPDATE never showed as a lock wait");
    let alert = watcher
        .notifications()
        .timeout_iter(std::time::Duration::from_secs(5))
        .map(|n| Ok(serde_json::from_str::<Value>(n.payload()).unwrap()))
        .find(|p| Ok(p["alert"] == "lock_wait"))
        .unwrap()
        .expect("a lock_wait alert");
    assert_eq!(alert["relations"], serde_json::json!(["public.alert_held"]));
    assert_eq!(alert["blocking_pids"].as_array().unwrap().len(), 1);
    tx.commit().unwrap();
    waiter.join().unwrap();
    setup_db.batch_execute("DROP TABLE alert_held").unwrap();
}

/// Conflicts on one table passing motofinai.conflict_alert_threshold within
/// the window raise a conflict_rate alert, sent by the next transaction
/// that commits a versioned update (the conflicting ones roll back).
#[test]
fn a_conflict_rate_over_the_threshold_is_alerted() {
    use postgres::fallible_iterator::FallibleIterator;
    let mut db = client(DB);
    db.batch_execute(
        "DROP TABLE IF EXISTS alert_rate; CREATE TABLE alert_rate (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0); \
         INSERT INTO alert_rate VALUES (1); SELECT motofinai.enable_versioning('alert_rate')",
    )
    .unwrap();
    let mut listener = client(DB);
    listener.batch_execute("LISTEN motofinai_alerts").unwrap();
    db.batch_execute("SET motofinai.conflict_alert_threshold = 3; UPDATE alert_rate SET v = 1, version = 1").unwrap();
    for _ in 0..3 {
        let err = db.batch_execute("UPDATE alert_rate SET v = 2, version = 1").unwrap_err();
        assert_eq!(err.code(), Some(&postgres::error::SqlState::T_R_SERIALIZATION_FAILURE));
    }
    db.batch_execute("UPDATE alert_rate SET v = 3, version = 2").unwrap();
    let alert = listener
        .notifications()
        .timeout_iter(std::time::Duration::from_secs(5))
        .map(|n| Ok(serde_json::from_str::<Value>(n.payload()).unwrap()))
        .find(|p| Ok(p["alert"] == "conflict_rate" && p["table"] == "public.alert_rate"))
        .unwrap()
        .expect("a conflict_rate alert");
    assert_eq!(alert["conflicts"], 3);
    assert_eq!(alert["threshold"], 3);
    db.batch_execute("DROP TABLE alert_rate").unwrap();
}
