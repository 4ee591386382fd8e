"""``manage.py check_consistency --html FILE``: one self-contained HTML file
with the run's findings, the check history's summary and trend chart; the
text output and the exit status as without it."""
import subprocess
import sys

import pytest

from page_support import Page, reset_history
from support import fresh_data, sql, value
from test_command import HERE, manage, run
from test_consistency_page import assert_self_contained


def report(path):
    return Page(path.read_text(encoding="utf-8"))


@pytest.mark.smoke
def test_html_on_the_commands_database_without_history(tmp_path):
    target = tmp_path / "report.html"
    result = manage("--all", "--html", str(target))
    assert result.returncode == 1, result.stderr
    assert result.stdout == manage("--all").stdout, "the text output does not change"
    html = target.read_text(encoding="utf-8")
    assert_self_contained(html)
    page = Page(html)
    errors = int(result.stdout.split("Errors found: ")[1].split()[0])
    warnings = int(result.stdout.split("Warnings found: ")[1].split()[0])
    rows = page.findings()
    assert len(rows) == errors + warnings
    assert sum(1 for r in rows if r["attrs"]["data-severity"] == "error") == errors
    assert [r["attrs"]["data-severity"] for r in rows] == sorted((r["attrs"]["data-severity"] for r in rows),
                                                                 key=lambda s: s != "error"), "errors first"
    assert page.ids["full-check-status"]["data-state"] == "missing"
    assert "trend-note" in page.ids and "trend-chart" not in page.ids
    assert f"<strong>{errors}</strong> error" in html
    assert not any("is-new" in r["attrs"]["class"] for r in rows), "nothing recorded to compare with"


def test_html_compares_with_the_last_recorded_run_and_draws_its_history(tmp_path):
    fresh_data()
    reset_history()
    value("SELECT id FROM motofinai.run_check('system')")
    sql("SELECT motofinai_gen.inject(1)")
    target = tmp_path / "report.html"
    text, errors = run("--all", "--html", str(target), database="default")
    page = report(target)
    rows = page.findings()
    new = {(r["attrs"]["data-code"], r["attrs"]["data-entity"], r["attrs"]["data-entity-id"])
           for r in rows if "is-new" in r["attrs"]["class"]}
    injected = {(c, e, str(i) if i is not None else "") for c, e, i in sql(
        "SELECT f.code, f.entity, f.entity_id FROM motofinai.check_system_consistency() f WHERE NOT EXISTS ("
        " SELECT FROM motofinai.check_runs r, jsonb_array_elements(r.findings) e WHERE e ->> 'code' = f.code"
        " AND e ->> 'entity' = f.entity AND (e ->> 'entity_id')::bigint IS NOT DISTINCT FROM f.entity_id)")}
    assert new == injected and new
    assert page.ids["full-check-status"]["data-state"] == "fresh"
    assert "trend-chart" in page.ids and len(page.table("runs")) == 1
    assert errors > 0


def test_html_with_fix_lists_the_repairs(tmp_path):
    fresh_data()
    sql("SELECT motofinai_gen.inject(1)")
    target = tmp_path / "report.html"
    run("--all", "--fix", "--html", str(target), database="default")   # no terminal: the plan only
    rows = report(target).repairs()
    assert {r["attrs"]["data-code"] for r in rows} == {"payment_not_applied", "overdue_status_stale",
                                                       "paid_not_completed"}
    assert all(r["attrs"]["data-applied"] == "false" for r in rows)
    run("--all", "--fix", "--yes", "--html", str(target), database="default")
    page = report(target)
    assert "Applied repairs" in page.html and all(r["attrs"]["data-applied"] == "true" for r in page.repairs())
    assert not [r for r in page.findings() if r["attrs"]["data-code"] == "paid_not_completed"], "the re-check's"


def test_html_for_one_loan_and_an_unwritable_file(tmp_path):
    target = tmp_path / "loan.html"
    text, errors = run("--loan", "1980", "--html", str(target))
    assert errors == 0 and "loan 1980 check" in target.read_text(encoding="utf-8")
    assert report(target).findings() == []
    result = subprocess.run([sys.executable, "manage.py", "check_consistency", "--database", "command",
                             "--quick", "--html", str(tmp_path / "missing" / "x.html")],
                            cwd=HERE, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "could not write the HTML report" in result.stderr
