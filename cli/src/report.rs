//! What the command prints: the seed's text, line for line, or one JSON
//! document. Progress goes to stderr, only on a terminal.

use console::style;
use indicatif::{ProgressBar, ProgressDrawTarget};
use serde_json::{json, Map, Value};
use std::time::Duration;

pub struct Finding {
    pub severity: String,
    pub code: String,
    pub entity: String,
    pub entity_id: Option<i64>,
    pub message: String,
    pub details: Value,
}

impl Finding {
    /// Accepted (motofinai.accepted_findings): shown only with
    /// --all-findings, and never counted.
    fn is_accepted(&self) -> bool {
        self.details.get("accepted").is_some()
    }
}

pub struct Fix {
    pub code: String,
    pub entity: String,
    pub entity_id: Option<i64>,
    pub summary: String,
    pub changes: Value,
    /// Why this fix is not (or would not be) applied: its loan's repairs did not hold.
    pub note: Option<String>,
}

pub struct Phase {
    pub header: String,
    pub findings: Vec<Finding>,
    /// None where the phase's findings came from a statement several phases
    /// share (--all): the statement's time is reported once, after them.
    pub elapsed: Option<Duration>,
}

const RULE: &str = "==================================================";

pub struct Output {
    verbose: bool,
    /// List accepted findings too (--all-findings).
    all_findings: bool,
    limit: usize,
    pub json: bool,
    /// The JSON document's extra parts, filled as the run goes.
    doc: Map<String, Value>,
}

/// A spinner for a long phase, drawn on stderr only when it is a terminal.
pub fn progress(header: &str, show: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if show {
        bar.set_message(header.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

impl Output {
    pub fn new(verbose: bool, limit: usize, json: bool, all_findings: bool) -> Output {
        Output { verbose, all_findings, limit, json, doc: Map::new() }
    }

    fn say(&self, line: impl AsRef<str>) {
        if !self.json {
            println!("{}", line.as_ref());
        }
    }

    pub fn start(&self) {
        self.say("Starting consistency checks...");
    }

    pub fn note(&mut self, line: &str) {
        self.say(format!("\n{line}"));
        if self.json {
            let notes = self.doc.entry("notes").or_insert_with(|| json!([]));
            notes.as_array_mut().expect("notes is an array").push(json!(line));
        }
    }

    pub fn phase(&self, phase: &Phase) {
        self.say(format!("\n{}", style(&phase.header).bold()));
        let (accepted, open): (Vec<&Finding>, Vec<&Finding>) = phase.findings.iter().partition(|f| f.is_accepted());
        let errors: Vec<&Finding> = open.iter().copied().filter(|f| f.severity == "error").collect();
        let warnings: Vec<&Finding> = open.iter().copied().filter(|f| f.severity != "error").collect();
        if errors.is_empty() && warnings.is_empty() {
            self.say(format!("{}", style("✓ No issues found").green()));
        }
        if !errors.is_empty() {
            self.say(format!("{}", style(format!("✗ {} error(s) found:", errors.len())).red()));
            self.list(&errors);
        }
        if !warnings.is_empty() {
            self.say(format!("{}", style(format!("⚠ {} warning(s) found:", warnings.len())).yellow()));
            self.list(&warnings);
        }
        if !accepted.is_empty() && self.all_findings {
            self.say(format!("◦ {} accepted finding(s), not counted:", accepted.len()));
            self.list(&accepted);
        } else if !accepted.is_empty() {
            self.say(format!("  ({} accepted finding(s) not counted; --all-findings lists them)", accepted.len()));
        }
        if let (true, Some(elapsed)) = (self.verbose, phase.elapsed) {
            self.say(format!("  ({} ms)", elapsed.as_millis()));
        }
    }

    /// The time of one statement that several phases shared: a line with
    /// --verbose, "ms" in the JSON document.
    pub fn shared_time(&mut self, elapsed: Duration, what: &str) {
        if self.verbose {
            self.say(format!("  ({} ms, {what})", elapsed.as_millis()));
        }
        self.doc.insert("ms".into(), json!(elapsed.as_millis() as u64));
    }

    /// What a recorded run found gone (--since-last).
    pub fn resolved(&mut self, header: &str, findings: &[Finding]) {
        self.say(format!("\n{}", style(header).bold()));
        if findings.is_empty() {
            self.say("  (nothing)");
        }
        let listed: Vec<&Finding> = findings.iter().collect();
        self.list(&listed);
        let gone: Vec<Value> =
            findings.iter().map(|f| json!({"code": f.code, "entity": f.entity, "entity_id": f.entity_id})).collect();
        self.doc.insert("resolved".into(), Value::Array(gone));
    }

    fn list(&self, findings: &[&Finding]) {
        for f in findings.iter().take(self.limit) {
            if self.verbose {
                let id = f.entity_id.map(|i| format!(" {i}")).unwrap_or_default();
                self.say(format!("    - [{}] {} ({}{id}) {}", f.code, f.message, f.entity, f.details));
            } else {
                self.say(format!("    - {}", f.message));
            }
        }
        if findings.len() > self.limit {
            self.say(format!("    ... and {} more", findings.len() - self.limit));
        }
    }

    /// The fixes under `title`, then those blocked (their loan's repairs
    /// did not hold) with what to do about each loan.
    pub fn fixes(&mut self, title: &str, fixes: &[Fix]) {
        let (blocked, fine): (Vec<&Fix>, Vec<&Fix>) = fixes.iter().partition(|f| f.note.is_some());
        if fine.is_empty() {
            self.say("\nNo automatic fixes available.");
        } else {
            self.say(format!("\n{}", style(title).bold()));
            self.fix_lines(&fine);
        }
        if !blocked.is_empty() {
            self.say(format!("\n{}", style("Blocked fixes (not applied):").bold()));
            self.fix_lines(&blocked);
            let mut notes: Vec<&str> = blocked.iter().filter_map(|f| f.note.as_deref()).collect();
            notes.dedup();
            for note in notes {
                self.say(format!("    ! {note}"));
            }
        }
        let key = if title.starts_with("Applied") { "applied_fixes" } else { "planned_fixes" };
        let list = |fixes: &[&Fix]| -> Value {
            fixes
                .iter()
                .map(|f| {
                    json!({ "code": f.code, "entity": f.entity, "entity_id": f.entity_id, "changes": f.changes,
                            "note": f.note })
                })
                .collect()
        };
        self.doc.insert(key.into(), list(&fine));
        if !blocked.is_empty() {
            self.doc.insert("blocked_fixes".into(), list(&blocked));
        }
    }

    fn fix_lines(&self, fixes: &[&Fix]) {
        for f in fixes {
            let id = f.entity_id.map(|i| format!(" {i}")).unwrap_or_default();
            self.say(format!("    - [{}] {}{id}: {}", f.code, f.entity, f.summary));
        }
    }

    /// The closing block (or the JSON document); the number of errors.
    pub fn finish(&mut self, phases: &[Phase], hint: bool) -> usize {
        let all: Vec<&Finding> = phases.iter().flat_map(|p| &p.findings).filter(|f| !f.is_accepted()).collect();
        let errors = all.iter().filter(|f| f.severity == "error").count();
        let warnings = all.len() - errors;
        if self.json {
            let mut codes = Map::new();
            for f in &all {
                let n = codes.entry(f.code.clone()).or_insert(json!(0));
                *n = json!(n.as_u64().unwrap_or(0) + 1);
            }
            let messages = |sev: bool| -> Vec<Value> {
                all.iter().filter(|f| (f.severity == "error") == sev).map(|f| json!(f.message)).collect()
            };
            let mut doc = Map::new();
            doc.insert("errors".into(), Value::Array(messages(true)));
            doc.insert("warnings".into(), Value::Array(messages(false)));
            doc.insert("counts".into(), json!({ "errors": errors, "warnings": warnings }));
            doc.insert("codes".into(), Value::Object(codes));
            doc.insert(
                "findings".into(),
                all.iter()
                    .map(|f| {
                        json!({ "severity": f.severity, "code": f.code, "entity": f.entity,
                                "entity_id": f.entity_id, "message": f.message, "details": f.details })
                    })
                    .collect(),
            );
            doc.insert(
                "phases".into(),
                phases
                    .iter()
                    .map(|p| {
                        let ms = p.elapsed.map(|e| e.as_millis() as u64);
                        json!({ "phase": p.header, "findings": p.findings.len(), "ms": ms })
                    })
                    .collect(),
            );
            doc.append(&mut self.doc);
            println!("{}", Value::Object(doc));
            return errors;
        }
        self.say(format!("\n{RULE}"));
        self.say("Consistency check completed");
        self.say(format!("Errors found: {errors}"));
        self.say(format!("Warnings found: {warnings}"));
        if hint && errors > 0 {
            self.say("\nRun with --fix to attempt automatic fixes");
        }
        errors
    }
}
