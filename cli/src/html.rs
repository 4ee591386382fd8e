//! `--html FILE`: one self-contained HTML report (inline CSS, the trend
//! chart as inline SVG, no script, no external resource) with the summary,
//! the errors and warnings per code over the last 30 days, and the findings.
//! The same structure, stylesheet and chart as the Django package's report
//! (python/motofinai_consistency: html_report.py, chart.py's layout, whose
//! geometry is repeated here).

use crate::report::{Finding, Phase};
use postgres::Client;
use std::collections::BTreeMap;
use std::fmt::Write;

const STYLES: &str = include_str!("../../python/motofinai_consistency/templates/motofinai_consistency/styles.css");
const DAYS: i32 = 30;
const LABEL_W: i32 = 230;
const SLOT: i32 = 16;
const BAR_W: i32 = 12;
const VALUE_W: i32 = 120;
/// Per character of the longest value label, where VALUE_W is too narrow.
const CHAR_W: i32 = 8;
const ROW_H: i32 = 30;
const BAR_MAX: f64 = 20.0;
const PAD_TOP: i32 = 6;
const AXIS_H: i32 = 22;

/// The findings per code and day of a history scope, from the extension.
pub struct Trend {
    /// The 30 days, oldest first (YYYY-MM-DD), ending at the server's today.
    days: Vec<String>,
    run_days: Vec<String>,
    /// (code, severity) -> day -> findings
    counts: BTreeMap<(String, String), BTreeMap<String, i64>>,
}

/// The trend of a history scope ('system' or 'quick'); None when the
/// extension keeps no history (older versions).
pub fn trend(client: &mut Client, scope: &str) -> Result<Option<Trend>, String> {
    let has = client
        .query_one("SELECT to_regclass('motofinai.finding_trends') IS NOT NULL", &[])
        .map_err(crate::db::server)?;
    if !has.get::<_, bool>(0) {
        return Ok(None);
    }
    let q = |client: &mut Client, sql: &str| -> Result<Vec<postgres::Row>, String> {
        client.query(sql, &[&scope, &DAYS]).map_err(crate::db::server)
    };
    let days = q(
        client,
        "SELECT to_char(current_date - $2::int + 1 + g, 'YYYY-MM-DD') FROM generate_series(0, $2::int - 1) g \
                          WHERE $1::text IS NOT NULL ORDER BY g",
    )?;
    let runs = q(
        client,
        "SELECT DISTINCT to_char(finished_at::date, 'YYYY-MM-DD') FROM motofinai.check_runs \
                          WHERE CASE scope WHEN 'changed' THEN 'system' ELSE scope END = $1 \
                            AND finished_at::date > current_date - $2::int",
    )?;
    let rows = q(
        client,
        "SELECT to_char(day, 'YYYY-MM-DD'), code, severity, findings FROM motofinai.finding_trends \
                          WHERE scope = $1 AND day > current_date - $2::int",
    )?;
    let mut counts: BTreeMap<(String, String), BTreeMap<String, i64>> = BTreeMap::new();
    for r in rows {
        counts.entry((r.get(1), r.get(2))).or_default().insert(r.get(0), r.get(3));
    }
    Ok(Some(Trend {
        days: days.iter().map(|r| r.get(0)).collect(),
        run_days: runs.iter().map(|r| r.get(0)).collect(),
        counts,
    }))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// At most one decimal, without a trailing zero (chart.py's `num`).
fn num(v: f64) -> String {
    let text = format!("{v:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

struct Row {
    label: String,
    code: String,
    severity: String,
    counts: BTreeMap<String, i64>,
    total: i64,
    max: i64,
    latest: i64,
}

/// The chart's rows: the two severity totals, then one per (code, severity),
/// errors first, then by the window's total, then by code.
fn rows(t: &Trend) -> Vec<Row> {
    let last_run = t.days.iter().rev().find(|d| t.run_days.contains(d)).cloned();
    let row = |label: String, code: &str, severity: &str, counts: BTreeMap<String, i64>| {
        let counts: BTreeMap<String, i64> = counts.into_iter().filter(|(d, _)| t.days.contains(d)).collect();
        Row {
            label,
            code: code.into(),
            severity: severity.into(),
            total: counts.values().sum(),
            max: counts.values().copied().max().unwrap_or(0),
            latest: last_run.as_ref().and_then(|d| counts.get(d)).copied().unwrap_or(0),
            counts,
        }
    };
    let mut out = Vec::new();
    for (severity, label) in [("error", "All errors"), ("warning", "All warnings")] {
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        for ((_, sev), per_day) in &t.counts {
            if sev == severity {
                for (day, n) in per_day {
                    *totals.entry(day.clone()).or_default() += n;
                }
            }
        }
        out.push(row(label.into(), "", severity, totals));
    }
    let mut per_code: Vec<Row> = t
        .counts
        .iter()
        .map(|((code, sev), per_day)| {
            let mark = if sev == "error" { "✗ " } else { "⚠ " };
            row(format!("{mark}{code}"), code, sev, per_day.clone())
        })
        .filter(|r| r.total > 0)
        .collect();
    per_code
        .sort_by(|a, b| (a.severity != "error", -a.total, &a.code).cmp(&(b.severity != "error", -b.total, &b.code)));
    out.extend(per_code);
    out
}

/// The text right of a row: its latest and largest count.
fn value_label(row: &Row) -> String {
    format!("latest {} · max {}", row.latest, row.max)
}

fn svg(t: &Trend, rows: &[Row]) -> String {
    let n = t.days.len() as i32;
    let value_w = rows.iter().map(|r| 16 + CHAR_W * value_label(r).chars().count() as i32).fold(VALUE_W, i32::max);
    let (width, height) = (LABEL_W + n * SLOT + value_w, PAD_TOP + rows.len() as i32 * ROW_H + AXIS_H);
    let mut out = format!(
        "<svg id=\"trend-chart\" class=\"mf-chart\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" aria-labelledby=\"trend-chart-title trend-chart-desc\">\n\
         <title id=\"trend-chart-title\">Errors and warnings per code, last 30 days</title>\n\
         <desc id=\"trend-chart-desc\">One row per severity total and per code, one column per day from {} to {}; bar \
         height relative to the row's maximum. The table below has the same figures.</desc>\n",
        t.days.first().map(String::as_str).unwrap_or(""),
        t.days.last().map(String::as_str).unwrap_or("")
    );
    for (i, row) in rows.iter().enumerate() {
        let base = PAD_TOP + i as i32 * ROW_H + BAR_MAX as i32 + 2;
        let kind = if row.code.is_empty() { "total" } else { "code" };
        let (code, sev) = (escape(&row.code), &row.severity);
        let _ = writeln!(out, "<g class=\"row row-{kind}\" data-code=\"{code}\" data-severity=\"{sev}\">");
        let _ = writeln!(
            out,
            "<text class=\"label\" x=\"{}\" y=\"{base}\" text-anchor=\"end\">{}</text>",
            LABEL_W - 8,
            escape(&row.label)
        );
        let _ = writeln!(
            out,
            "<line class=\"baseline\" x1=\"{LABEL_W}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\"/>",
            LABEL_W + n * SLOT
        );
        for (j, day) in t.days.iter().enumerate() {
            let x = LABEL_W + j as i32 * SLOT + (SLOT - BAR_W) / 2;
            if !t.run_days.contains(day) {
                let _ = writeln!(
                    out,
                    "<rect class=\"norun\" x=\"{x}\" y=\"{}\" width=\"{BAR_W}\" height=\"2\"><title>{day}: no check run</title></rect>",
                    base - 2
                );
                continue;
            }
            let count = row.counts.get(day).copied().unwrap_or(0);
            if count <= 0 {
                continue;
            }
            let h = ((count as f64 * BAR_MAX / row.max as f64) * 10.0).round() / 10.0;
            let h = h.max(1.0);
            let what = if row.code.is_empty() { row.label.to_lowercase() } else { format!("{} ({sev})", row.code) };
            let _ = writeln!(
                out,
                "<rect class=\"bar bar-{sev}\" x=\"{x}\" y=\"{}\" width=\"{BAR_W}\" height=\"{}\" data-day=\"{day}\" \
                 data-code=\"{code}\" data-severity=\"{sev}\" data-count=\"{count}\"><title>{day} {}: {count}</title></rect>",
                num(base as f64 - h),
                num(h),
                escape(&what)
            );
        }
        let _ = writeln!(
            out,
            "<text class=\"value\" x=\"{}\" y=\"{base}\">{}</text>\n</g>",
            LABEL_W + n * SLOT + 8,
            value_label(row)
        );
    }
    let mut j = n - 1;
    while j >= 0 {
        let day = &t.days[j as usize];
        let _ = writeln!(
            out,
            "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            LABEL_W + j * SLOT + SLOT / 2,
            height - 6,
            &day[5..]
        );
        j -= 7;
    }
    out.push_str("</svg>");
    out
}

fn trend_section(trend: Option<&Trend>, scope: &str) -> String {
    let Some(t) = trend else {
        return "<p class=\"mf-note\" id=\"trend-note\">Trends: this extension version keeps no check history.</p>"
            .into();
    };
    if t.run_days.is_empty() {
        return format!(
            "<p class=\"mf-note\" id=\"trend-note\">Trends: no {scope} check run was recorded in the last 30 days.</p>"
        );
    }
    let rows = rows(t);
    let mut table = String::new();
    for r in &rows {
        let head = if r.code.is_empty() { escape(&r.label) } else { format!("<code>{}</code>", escape(&r.code)) };
        let _ = write!(
            table,
            "<tr data-code=\"{}\" data-severity=\"{}\"><th scope=\"row\">{head}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&r.code),
            r.severity,
            r.severity,
            r.latest,
            r.max
        );
    }
    format!(
        "<p class=\"mf-legend\"><span class=\"mf-swatch mf-swatch-error\"></span>error <span class=\"mf-swatch mf-swatch-warning\"></span>warning \
         <span class=\"mf-swatch mf-swatch-norun\"></span>no check run that day. Each row is scaled to its own maximum; counts at each day's last run.</p>\n\
         <div class=\"mf-scroll\">{}</div>\n<div class=\"mf-scroll\"><table id=\"trend-table\">\n<caption>Findings per code, last 30 days</caption>\n\
         <thead><tr><th scope=\"col\">Code</th><th scope=\"col\">Severity</th><th scope=\"col\" class=\"num\">Latest</th><th scope=\"col\" class=\"num\">Max</th></tr></thead>\n\
         <tbody>{table}</tbody></table></div>",
        svg(t, &rows)
    )
}

fn findings_table(findings: &[&Finding]) -> String {
    let mut body = String::new();
    for f in findings {
        let accepted = f.details.get("accepted").is_some();
        let id = f.entity_id.map(|i| format!(" {i}")).unwrap_or_default();
        let _ = write!(
            body,
            "\n<tr class=\"finding severity-{sev}{acc}\" data-severity=\"{sev}\" data-code=\"{code}\" data-entity=\"{entity}\" data-entity-id=\"{eid}\">\
             <td><span class=\"mf-sev mf-sev-{sev}\">{sev}</span></td><td><code>{code}</code></td><td>{entity}{id}</td>\
             <td>{msg}<details><summary>details</summary><code>{details}</code></details></td><td>{badge}</td></tr>",
            sev = escape(&f.severity),
            acc = if accepted { " is-accepted" } else { "" },
            code = escape(&f.code),
            entity = escape(&f.entity),
            eid = f.entity_id.map(|i| i.to_string()).unwrap_or_default(),
            msg = escape(&f.message),
            details = escape(&f.details.to_string()),
            badge = if accepted { "<span class=\"mf-badge mf-badge-accepted\">accepted</span>" } else { "" },
        );
    }
    if findings.is_empty() {
        body.push_str("\n<tr><td colspan=\"5\">No findings.</td></tr>");
    }
    format!(
        "<div class=\"mf-scroll\"><table id=\"findings-table\">\n<caption>Findings, errors first</caption>\n\
         <thead><tr><th scope=\"col\">Severity</th><th scope=\"col\">Code</th><th scope=\"col\">Entity</th><th scope=\"col\">Message</th><th scope=\"col\">Status</th></tr></thead>\n\
         <tbody>{body}\n</tbody></table></div>"
    )
}

/// The whole report for the phases the command ran.
pub fn report(database: &str, generated: &str, scope: &str, phases: &[Phase], trend: Option<&Trend>) -> String {
    let mut all: Vec<&Finding> = phases.iter().flat_map(|p| &p.findings).collect();
    all.sort_by_key(|f| f.severity != "error");
    let open: Vec<&&Finding> = all.iter().filter(|f| f.details.get("accepted").is_none()).collect();
    let errors = open.iter().filter(|f| f.severity == "error").count();
    let warnings = open.len() - errors;
    let accepted = all.len() - open.len();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let accepted_note = if accepted > 0 { format!("; {accepted} accepted, not counted") } else { String::new() };
    let title = format!("Motofinai consistency report: {scope} check");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"check_consistency {version}\">\n<title>{title}</title>\n\
         <style>\nbody {{ margin: 0; background: #ffffff; }}\n{STYLES}\n</style>\n</head>\n<body>\n\
         <main class=\"mf mf-report\" id=\"consistency-report\">\n<header>\n<h1>{title}</h1>\n\
         <p>Database <strong>{db}</strong>, generated {generated}; findings from the check_consistency command's run.</p>\n</header>\n\n\
         <section id=\"summary\" aria-labelledby=\"summary-title\">\n<h2 id=\"summary-title\">Summary</h2>\n\
         <p class=\"mf-counts\" id=\"finding-counts\"><strong>{errors}</strong> error{pe}, <strong>{warnings}</strong> warning{pw}{accepted_note}.</p>\n</section>\n\n\
         <section id=\"trends\" aria-labelledby=\"trends-title\">\n<h2 id=\"trends-title\">Errors and warnings per code, last 30 days</h2>\n{trend}\n</section>\n\n\
         <section id=\"findings\" aria-labelledby=\"findings-title\">\n<h2 id=\"findings-title\">Findings</h2>\n{table}\n</section>\n\
         <footer><p>check_consistency {version}. A self-contained file: no scripts, no external resources.</p></footer>\n</main>\n</body>\n</html>\n",
        version = env!("CARGO_PKG_VERSION"),
        db = escape(database),
        pe = plural(errors),
        pw = plural(warnings),
        trend = trend_section(trend, scope),
        table = findings_table(&all),
    )
}
