"""The parts the admin's Consistency page and the standalone HTML report share
(status, runs, the trend chart and its table, findings), and the report
itself: one self-contained file (inline CSS, the chart as inline SVG, no
script, no external resource), for e-mail or a cron job's archive.

The report's structure, for another program writing the same file, is in
docs/django.md ("The HTML report").
"""
from django.template.loader import render_to_string
from django.utils import timezone

from . import __version__, chart, dashboard
from .conf import setting


def fmt_duration(seconds):
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def fmt_age(hours):
    if hours is None:
        return ""
    if hours < 1:
        return f"{max(0, int(hours * 60))} min ago"
    if hours < 48:
        return f"{hours:.0f} h ago"
    return f"{hours / 24:.0f} days ago"


def status_context(using, feats):
    """The last full run's age and the last runs."""
    status = dashboard.full_check_status(using, feats, setting("FULL_CHECK_MAX_AGE_HOURS"))
    if status["run"]:
        status["age"] = fmt_age(status["run"]["age_hours"])
    runs = dashboard.panel(using, dashboard.runs, using, feats)
    for run in runs.data or []:
        run["duration"] = fmt_duration(run["seconds"])
    return {"status": status, "runs": runs, "runs_have_moves": "new_errors" in feats.columns("check_runs")}


def trend_context(using, feats, scope):
    trend = dashboard.panel(using, dashboard.trends, using, feats, scope)
    if not trend:
        return {"trend": trend}
    if not trend.data.run_days:
        return {"trend": dashboard.Panel(note=f"no {scope} check run was recorded in the last "
                                              f"{dashboard.TREND_DAYS} days")}
    rows = chart.rows_of(trend.data)
    return {"trend": trend, "trend_rows": rows, "trend_svg": chart.svg(trend.data, rows),
            "trend_has_moves": trend.data.new is not None}


def base_context(using, feats):
    return {"features": feats, "database": _database_name(using), "package_version": __version__,
            "not_available": dashboard.NOT_AVAILABLE}


def _database_name(using):
    from django.db import connections

    return connections[using].settings_dict.get("NAME")


def counts_of(findings):
    open_ = [f for f in findings if not f.get("accepted")]
    return {"errors": sum(1 for f in open_ if f["severity"] == "error"),
            "warnings": sum(1 for f in open_ if f["severity"] != "error"),
            "new": sum(1 for f in open_ if f.get("new")),
            "accepted": sum(1 for f in findings if f.get("accepted"))}


def render(context):
    """The standalone report."""
    for f in context.get("findings", []):
        f["details_text"] = dashboard.compact_json(f.get("details"))
    context.setdefault("generated_at", timezone.now())
    return render_to_string("motofinai_consistency/report.html", context)


def report_from_history(using, scope):
    """The report of the latest recorded run of a scope (the page's "Download")."""
    feats = dashboard.features(using)
    context = base_context(using, feats)
    context.update(status_context(using, feats))
    context.update(trend_context(using, feats, scope))
    latest = dashboard.latest_by_scope(using, feats).get(scope)
    findings = dashboard.all_findings(using, feats, scope) if latest else []
    context.update({
        "title": f"Motofinai consistency report: {scope} check",
        "source": (f"run {latest['id']} ({latest['run_scope']}) recorded at "
                   f"{timezone.localtime(latest['finished_at']):%Y-%m-%d %H:%M %Z}") if latest
        else f"no {scope} check run recorded",
        "scope": scope, "findings": findings, "counts": counts_of(findings),
        "compared": latest is not None})
    return render(context)
