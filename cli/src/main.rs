//! `check_consistency`: the Motofinai consistency-check command, for cron and
//! for people. The extension knows the rules; this only asks it and reports.
//!
//! Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 usage,
//! connection or server failure.

mod db;
mod html;
mod report;
mod tls;

use clap::Parser;
use report::{Finding, Output, Phase};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "check_consistency",
    version,
    about = "Check the Motofinai data for consistency (runs the motofinai_consistency extension's checks)",
    after_help = "With no scope, runs the quick check. Connection: --database-url, else DATABASE_URL, \
                  else the libpq PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE variables. \
                  TLS: sslmode (disable, prefer, require, verify-ca, verify-full) and sslrootcert in the URL, \
                  else PGSSLMODE and PGSSLROOTCERT.\n\
                  Exit status: 0 no errors (warnings allowed), 1 errors found, 2 usage, connection or server failure."
)]
struct Args {
    /// PostgreSQL connection URL, e.g. postgresql://user@host/motofinai
    #[arg(short = 'd', long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Check one loan
    #[arg(long, value_name = "ID", group = "scope")]
    loan: Option<i64>,
    /// Check one payment
    #[arg(long, value_name = "ID", group = "scope")]
    payment: Option<i64>,
    /// Check one motor (and its stock batch)
    #[arg(long, value_name = "ID", group = "scope")]
    motor: Option<i64>,
    /// Check everything: the system check (one statement), its findings in
    /// four phases: structure, loans, payments, inventory
    #[arg(long, group = "scope")]
    all: bool,
    /// The quick check (the default when no scope is given)
    #[arg(long, group = "scope")]
    quick: bool,
    /// An incremental run: only the loans changed (or fallen due) since the
    /// last full or incremental run (needs motofinai.track_changes()); recorded
    #[arg(long, group = "scope")]
    changed: bool,
    /// Record the run and print only what is new and what was resolved since
    /// the previous run of its scope (with --all, --quick or --changed)
    #[arg(long)]
    since_last: bool,
    /// List accepted findings too (marked; they never count)
    #[arg(long)]
    all_findings: bool,
    /// Also write a self-contained HTML report (summary, 30-day trend chart, findings) to FILE
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Every finding with its code and details, and the timings (per phase;
    /// with --all, the one statement's)
    #[arg(short, long)]
    verbose: bool,
    /// Show the safe repairs for the findings and apply them (asks first on a terminal)
    #[arg(long)]
    fix: bool,
    /// With --fix: apply without asking (for cron)
    #[arg(short = 'y', long, requires = "fix")]
    yes: bool,
    /// One JSON document instead of text
    #[arg(long)]
    json: bool,
    /// No colors, even on a terminal
    #[arg(long)]
    no_color: bool,
    /// Findings listed per severity in the text output
    #[arg(long, value_name = "N", default_value_t = 20)]
    limit: usize,
}

/// What to check, as the extension names it.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    Quick,
    All,
    Changed,
    Loan(i64),
    Payment(i64),
    Motor(i64),
}

impl Scope {
    fn of(args: &Args) -> Scope {
        match (args.loan, args.payment, args.motor, args.all, args.changed) {
            (Some(id), ..) => Scope::Loan(id),
            (_, Some(id), ..) => Scope::Payment(id),
            (_, _, Some(id), ..) => Scope::Motor(id),
            (_, _, _, true, _) => Scope::All,
            (.., true) => Scope::Changed,
            _ => Scope::Quick,
        }
    }

    /// run_check's scope, for a recorded run.
    fn recorded(self) -> Option<&'static str> {
        match self {
            Scope::Quick => Some("quick"),
            Scope::All => Some("system"),
            Scope::Changed => Some("changed"),
            _ => None,
        }
    }

    /// fix_consistency's (scope, id).
    fn fix_args(self) -> (&'static str, Option<i64>) {
        match self {
            Scope::Quick => ("quick", None),
            Scope::All | Scope::Changed => ("system", None),
            Scope::Loan(id) => ("loan", Some(id)),
            Scope::Payment(id) => ("payment", Some(id)),
            Scope::Motor(id) => ("motor", Some(id)),
        }
    }

    /// The phases: (header, query, id).
    fn phases(self) -> Vec<(String, &'static str, Option<i64>)> {
        match self {
            Scope::Quick => {
                vec![("Running quick consistency check...".into(), "motofinai.check_quick_consistency()", None)]
            }
            Scope::Changed => vec![(
                "Checking changed loans...".into(),
                "jsonb_to_recordset((SELECT findings FROM motofinai.run_check('changed'))) \
                 AS f(severity text, code text, entity text, entity_id bigint, message text, details jsonb)",
                None,
            )],
            Scope::All => unreachable!("--all runs one statement for its four phases: check_all"),
            Scope::Loan(id) => {
                vec![(format!("Checking loan {id}..."), "motofinai.check_loan_consistency($1)", Some(id))]
            }
            Scope::Payment(id) => {
                vec![(format!("Checking payment {id}..."), "motofinai.check_payment_consistency($1)", Some(id))]
            }
            Scope::Motor(id) => {
                vec![(format!("Checking motor {id}..."), "motofinai.check_inventory_consistency($1)", Some(id))]
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let color = !args.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    console::set_colors_enabled(color);
    console::set_colors_enabled_stderr(color);
    match run(&args) {
        Ok(errors) if errors > 0 => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("check_consistency: {e}");
            ExitCode::from(2)
        }
    }
}

/// Run the check (and the fixes); the number of errors that remain.
fn run(args: &Args) -> Result<usize, String> {
    let mut client = db::connect(args.database_url.as_deref())?;
    db::require_extension(&mut client)?;
    let scope = Scope::of(args);
    let mut out = Output::new(args.verbose, args.limit, args.json, args.all_findings);
    out.start();
    if args.since_last {
        let recorded = scope.recorded().ok_or("--since-last needs --all, --quick or --changed")?;
        let started = Instant::now();
        let (new, resolved) = db::since_last(&mut client, recorded)?;
        let new = Phase { header: "New since the last run:".into(), findings: new, elapsed: Some(started.elapsed()) };
        out.phase(&new);
        out.resolved("Resolved since the last run:", &resolved);
        // The summary counts what is new: the exit status says whether errors appeared.
        return Ok(out.finish(&[new], false));
    }
    let phases = check(&mut client, scope, &mut out)?;
    if let Some(path) = &args.html {
        write_html(&mut client, path, scope, &phases)?;
    }
    if !args.fix {
        return Ok(out.finish(&phases, true));
    }
    let (name, id) = scope.fix_args();
    let planned = db::fixes(&mut client, name, id, false)?;
    out.fixes("Planned fixes:", &planned);
    let applicable = planned.iter().filter(|f| f.note.is_none()).count();
    if applicable == 0 {
        return Ok(out.finish(&phases, false));
    }
    if !(args.yes || (!args.json && confirm(applicable)?)) {
        out.note(if std::io::stdin().is_terminal() && !args.json {
            "Fixes not applied."
        } else {
            "Fixes not applied: no terminal to confirm on; pass --yes to apply them."
        });
        return Ok(out.finish(&phases, false));
    }
    let applied = db::fixes(&mut client, name, id, true)?;
    out.fixes("Applied fixes:", &applied);
    out.note("Re-checking after fixes...");
    let after = check(&mut client, scope, &mut out)?;
    Ok(out.finish(&after, false))
}

fn check(client: &mut postgres::Client, scope: Scope, out: &mut Output) -> Result<Vec<Phase>, String> {
    if matches!(scope, Scope::All) {
        return check_all(client, out);
    }
    let mut phases = Vec::new();
    for (header, query, id) in scope.phases() {
        let started = Instant::now();
        let findings: Vec<Finding> = db::findings(client, query, id)?;
        let phase = Phase { header, findings, elapsed: Some(started.elapsed()) };
        out.phase(&phase);
        phases.push(phase);
    }
    Ok(phases)
}

/// --all's phases: the family of codes each lists, and its header.
const ALL_PHASES: [(&str, &str); 4] = [
    ("system", "Checking system structure..."),
    ("loan", "Checking all loans..."),
    ("payment", "Checking all payments..."),
    ("inventory", "Checking inventory..."),
];

/// --all: the system check as one statement (its pass over the installments
/// and payments is shared by the loan, payment and reference rules: about
/// two thirds of the time of the four families' statements run apart), its
/// findings, in their order, split into the phases by their code's family.
fn check_all(client: &mut postgres::Client, out: &mut Output) -> Result<Vec<Phase>, String> {
    let progress = report::progress("Checking system structure, loans, payments and inventory...", !out.json);
    let started = Instant::now();
    let findings = db::findings(client, "motofinai.check_system_consistency()", None)?;
    let elapsed = started.elapsed();
    let families = db::code_families(client)?;
    progress.finish_and_clear();
    let mut phases: Vec<Phase> = ALL_PHASES
        .iter()
        .map(|(_, header)| Phase { header: header.to_string(), findings: Vec::new(), elapsed: None })
        .collect();
    for f in findings {
        // A code the catalogue does not know is the system section's.
        let family = families.get(&(f.code.clone(), f.entity.clone())).map_or("system", String::as_str);
        let at = ALL_PHASES.iter().position(|(name, _)| *name == family).unwrap_or(0);
        phases[at].findings.push(f);
    }
    for phase in &phases {
        out.phase(phase);
    }
    out.shared_time(elapsed, "the four phases in one statement");
    Ok(phases)
}

/// The HTML report of a run, with the trend of its history scope.
fn write_html(
    client: &mut postgres::Client,
    path: &std::path::Path,
    scope: Scope,
    phases: &[Phase],
) -> Result<(), String> {
    let history = if matches!(scope, Scope::Quick) { "quick" } else { "system" };
    let trend = html::trend(client, history)?;
    let row = client
        .query_one("SELECT current_database()::text, to_char(now(), 'YYYY-MM-DD HH24:MI TZ')", &[])
        .map_err(|e| e.to_string())?;
    let name = scope.recorded().unwrap_or("entity");
    let page = html::report(row.get(0), row.get(1), name, phases, trend.as_ref());
    std::fs::write(path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Ask on the terminal; without one, never apply.
fn confirm(n: usize) -> Result<bool, String> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    print!("Apply {n} fix(es)? [y/N] ");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
