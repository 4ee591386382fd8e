"""The Consistency page and the HTML report in a real browser: Debian's
headless Chromium (browser.py) loads the page from a test server and the
report from disk, and the test reads the rendered DOM: the trend chart's bars
for a known history, the findings table, and basic accessibility (table
headers and captions, labelled form controls, text contrast of at least
4.5:1, 3:1 for large text, computed from the rendered colours, in the
admin's light and dark themes). Screenshots
are kept under results/browser/ (git-ignored; MF_DJANGO_ARTIFACTS moves it).

The known history: check runs written into motofinai.check_runs by hand, on
days relative to the database's current date, with the page reading them as
an extension without the history views does (the views are compared with
check_runs in test_consistency_page.py)."""
import json
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from browser import Chromium, LiveServer, chromium_missing
from motofinai_consistency import dashboard
from page_support import PAGE, reset_history, user, VIEW, APPLY
from support import fresh_data, sql, value
from test_consistency_page import assert_self_contained, features_without

HERE = Path(__file__).resolve().parent
ARTIFACTS = Path(os.environ.get("MF_DJANGO_ARTIFACTS") or HERE / "results" / "browser")
MISSING = chromium_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"browser test skipped: {MISSING}")


def finding(severity, code, entity, entity_id, message, **details):
    return {"severity": severity, "code": code, "entity": entity, "entity_id": entity_id, "message": message,
            "details": details}


def overdue(*loans):
    return [finding("warning", "overdue", "loan", i, f"{i} payment(s) are overdue") for i in loans]


def overpaid(*loans):
    return [finding("error", "overpaid", "loan", i, f"Total paid exceeds loan amount (loan {i})") for i in loans]


def duplicate_vin(*motors):
    return [finding("error", "duplicate_vin", "motor", i, f"VIN of motor {i} is duplicated") for i in motors]


def known_history():
    """(days ago, time, findings) of each run, and what the chart must show."""
    schedule, loan = sql("SELECT id, loan_application_id FROM loans_paymentschedule ORDER BY id LIMIT 1")[0]
    runs = [
        (6, "10:00", overdue(1, 2, 3, 4) + overpaid(5)),
        (3, "09:00", overdue(*range(1, 10))),                       # not the day's last run: not drawn
        (3, "18:00", overdue(1, 2) + overpaid(5, 6) + duplicate_vin(3)),
        (0, None, overdue(1, 2, 3, 4, 5) + duplicate_vin(3, 5) + [finding(
            "error", "payment_not_applied", "schedule", schedule, "Installment has a payment but is not paid",
            loan_id=loan)]),
    ]
    expected = {   # (code, severity) -> {days ago: count}; "" = the severity's total
        ("", "error"): {6: 1, 3: 3, 0: 3},
        ("", "warning"): {6: 4, 3: 2, 0: 5},
        ("duplicate_vin", "error"): {3: 1, 0: 2},
        ("overpaid", "error"): {6: 1, 3: 2},
        ("payment_not_applied", "error"): {0: 1},
        ("overdue", "warning"): {6: 4, 3: 2, 0: 5},
    }
    order = [("", "error"), ("", "warning"), ("duplicate_vin", "error"), ("overpaid", "error"),
             ("payment_not_applied", "error"), ("overdue", "warning")]
    new = {("overdue", 3), ("overdue", 4), ("overdue", 5), ("duplicate_vin", 5), ("payment_not_applied", schedule)}
    return runs, expected, order, new, loan


def record_history(runs):
    reset_history()
    for days, at, found in runs:
        errors = sum(1 for f in found if f["severity"] == "error")
        start = (f"current_date - {days} + time '{at}'" if at
                 else "greatest(current_date::timestamptz, now() - interval '1 minute')")
        sql(f"INSERT INTO motofinai.check_runs (started_at, finished_at, scope, errors, warnings, findings) "
            f"SELECT s, s + interval '2 seconds', 'system', %s, %s, %s::jsonb FROM (SELECT {start} AS s) x",
            [errors, len(found) - errors, json.dumps(found)])


CHART = """[...document.querySelectorAll('#trend-chart g.row')].map(g => ({
    code: g.dataset.code, severity: g.dataset.severity,
    norun: g.querySelectorAll('rect.norun').length,
    bars: [...g.querySelectorAll('rect.bar')].map(r => ({
        day: r.dataset.day, count: +r.dataset.count, height: +r.getAttribute('height'),
        drawn: Math.round(r.getBoundingClientRect().height * 10) / 10,
        fill: getComputedStyle(r).fill}))}))"""

FINDINGS = """[...document.querySelectorAll('#findings-table tbody tr.finding')].map(tr => ({
    code: tr.dataset.code, entity: tr.dataset.entity, id: tr.dataset.entityId, severity: tr.dataset.severity,
    isNew: tr.classList.contains('is-new'), links: [...tr.querySelectorAll('a')].map(a => a.getAttribute('href')),
    visible: tr.getBoundingClientRect().height > 0}))"""

# Basic accessibility in the page's own part (.mf): every table has a caption and
# column headers (th scope=col in thead); every visible form control has a label;
# every visible text has a contrast of at least 4.5:1 (3:1 at 24px, or bold 18.66px)
# against its background, both as the browser computed them (SVG text: its fill).
ACCESSIBILITY = r"""(() => {
  const problems = [], root = document.querySelector('.mf');
  for (const t of root.querySelectorAll('table')) {
    const name = t.id || t.className;
    if (!t.querySelector('caption')) problems.push('table without caption: ' + name);
    const ths = t.querySelectorAll('thead th');
    if (!ths.length) problems.push('table without column headers: ' + name);
    for (const th of ths) if (th.getAttribute('scope') !== 'col') problems.push('header without scope=col: ' + name);
  }
  for (const el of root.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label')) problems.push('unlabelled: ' + (el.name || el.id));
  }
  for (const b of root.querySelectorAll('button, a')) {
    if (!(b.textContent.trim() || b.getAttribute('aria-label'))) problems.push('no accessible name: ' + b.outerHTML.slice(0, 60));
  }
  const rgba = s => { const m = (s.match(/[\d.]+/g) || [0, 0, 0]).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const over = (c, b) => ({r: c.r * c.a + b.r * (1 - c.a), g: c.g * c.a + b.g * (1 - c.a), b: c.b * c.a + b.b * (1 - c.a), a: 1});
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                     return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    return layers.reverse().reduce((acc, c) => over(c, acc), {r: 255, g: 255, b: 255, a: 1});
  };
  let checked = 0;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || el.closest('title, desc, option, style, script')) continue;
    const box = el.getBoundingClientRect(), st = getComputedStyle(el);
    if (!box.width || !box.height || st.visibility === 'hidden') continue;
    const svg = el instanceof SVGElement;
    const bg = background(svg ? el.ownerSVGElement.parentElement : el);
    const fg = over(rgba(svg ? st.fill : st.color), bg);
    const l1 = lum(fg), l2 = lum(bg), ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked++;
    if (ratio < need) problems.push(`contrast ${ratio.toFixed(2)} < ${need}: "${node.textContent.trim().slice(0, 40)}"`);
  }
  return {problems, checked};
})()"""


@pytest.fixture
def history(monkeypatch):
    fresh_data()
    runs, expected, order, new, loan = known_history()
    record_history(runs)
    # the hand-made runs have no history of their own: read them as check_runs
    monkeypatch.setattr(dashboard, "features", features_without("current_findings", "finding_trends"))
    return runs, expected, order, new, loan


def check_chart(chart, expected, order, today):
    from datetime import date, timedelta

    today = date.fromisoformat(today)
    assert [(row["code"], row["severity"]) for row in chart] == order
    for row in chart:
        want = expected[(row["code"], row["severity"])]
        top = max(want.values())
        assert {(b["day"], b["count"]) for b in row["bars"]} == {
            ((today - timedelta(days=d)).isoformat(), n) for d, n in want.items()}, row["code"]
        for bar in row["bars"]:
            height = max(1.0, round(bar["count"] * 20 / top, 1))
            assert bar["height"] == height and bar["drawn"] == height, bar
            assert bar["fill"] == ("rgb(198, 40, 40)" if row["severity"] == "error" else "rgb(161, 92, 7)")
        assert row["norun"] == 30 - 3, "27 days without a run"


def check_accessibility(browser, what):
    result = browser.evaluate(ACCESSIBILITY)
    assert result["checked"] > 50, f"{what}: too little text checked"
    assert result["problems"] == [], what


def test_the_page_in_chromium(history, tmp_path):
    runs, expected, order, new, loan = history
    client = Client()
    client.force_login(user("mf_browser", VIEW, APPLY, "finance.view_loanapplication", "finance.view_motor",
                            "finance.view_paymentschedule"))
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    today = value("SELECT current_date::text")
    with LiveServer() as server, Chromium(tmp_path / "chromium") as browser:
        browser.set_cookie(settings.SESSION_COOKIE_NAME, session, server.url)
        assert browser.goto(server.url + PAGE) == 200
        assert browser.evaluate("document.title").startswith("Consistency")
        check_chart(browser.evaluate(CHART), expected, order, today)
        rows = browser.evaluate(FINDINGS)
        last = runs[-1][2]
        assert sorted((r["code"], int(r["id"])) for r in rows) == sorted((f["code"], f["entity_id"]) for f in last)
        assert all(r["visible"] for r in rows)
        assert {(r["code"], int(r["id"])) for r in rows if r["isNew"]} == new
        assert [r["severity"] for r in rows] == ["error"] * 3 + ["warning"] * 5, "errors first"
        for r in rows:
            model = {"loan": "loanapplication", "motor": "motor", "schedule": "paymentschedule"}[r["entity"]]
            assert f"/admin/finance/{model}/{r['id']}/change/" in r["links"]
        schedule = next(r for r in rows if r["code"] == "payment_not_applied")
        assert f"/admin/finance/loanapplication/{loan}/change/" in schedule["links"]
        counts = browser.evaluate("document.getElementById('finding-counts').textContent.replace(/\\s+/g, ' ')")
        assert "3 errors, 5 warnings, 5 new since the run before" in counts
        assert browser.evaluate("document.getElementById('full-check-status').dataset.state") == "fresh"
        check_accessibility(browser, "the page")
        browser.screenshot(ARTIFACTS / "consistency-page.png")
        # the admin's dark theme (it follows the system's): the page's colours follow it
        browser.color_scheme("dark")
        assert browser.goto(server.url + PAGE) == 200
        check_accessibility(browser, "the page, dark")
        browser.screenshot(ARTIFACTS / "consistency-page-dark.png", full_page=False)
        browser.color_scheme("light")
        # a filter through the form, as a person would
        browser.evaluate("document.getElementById('id_code').value = 'overdue'")
        browser.evaluate("document.getElementById('findings-filters').submit()")
        browser.wait_event("Page.loadEventFired")
        assert {r["code"] for r in browser.evaluate(FINDINGS)} == {"overdue"}
        # the dry run and its apply button
        assert browser.goto(server.url + PAGE + "?plan=1#repairs") == 200
        assert browser.evaluate("!!document.getElementById('apply-button') || "
                                "document.getElementById('repairs-table').rows.length")
        browser.screenshot(ARTIFACTS / "consistency-repairs.png", full_page=False)


def test_the_report_from_disk_in_chromium(history, tmp_path):
    runs, expected, order, new, loan = history
    target = tmp_path / "report.html"
    call_command("check_consistency", "--all", "--html", str(target), stdout=open(os.devnull, "w"))
    html = target.read_text(encoding="utf-8")
    assert_self_contained(html)
    found = value("SELECT count(*) FROM motofinai.check_system_consistency()")
    today = value("SELECT current_date::text")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with Chromium(tmp_path / "chromium") as browser:
        browser.goto(target.as_uri())
        requests = [e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"]
        assert requests == [target.as_uri()], "one file, nothing fetched"
        check_chart(browser.evaluate(CHART), expected, order, today)
        rows = browser.evaluate(FINDINGS)
        assert len(rows) == found > 0
        assert not [r for r in rows if r["links"]], "the report links nowhere"
        assert browser.evaluate("document.querySelectorAll('script, link, img, iframe').length") == 0
        check_accessibility(browser, "the report")
        browser.screenshot(ARTIFACTS / "consistency-report.png")


def test_large_counts_fit_in_the_chart(tmp_path):
    """Every label of the chart lies inside its drawing, whatever the counts
    (a full check of the generated 100,000 loans has 7,432 findings)."""
    from datetime import date, timedelta

    from motofinai_consistency import chart

    today = date(2026, 12, 1)
    days = [today - timedelta(days=d) for d in range(29, -1, -1)]
    counts = {("overdue", "warning"): {today: 7432, days[0]: 123456},
              ("overpaid", "error"): {today: 5, days[3]: 99999}}
    trend = dashboard.Trend(days, {today, days[0], days[3]}, counts)
    styles = (Path(chart.__file__).parent / "templates" / "motofinai_consistency" / "styles.css").read_text()
    page = tmp_path / "chart.html"
    page.write_text(f'<!doctype html><meta charset="utf-8"><style>{styles}</style><body class="mf">'
                    f'{chart.svg(trend, chart.rows_of(trend))}</body>', encoding="utf-8")
    with Chromium(tmp_path / "chromium") as browser:
        browser.goto(page.as_uri())
        outside = browser.evaluate("""(() => {
          const svg = document.getElementById('trend-chart'), view = svg.viewBox.baseVal;
          return Array.from(svg.querySelectorAll('text'))
            .filter(t => { const b = t.getBBox(); return b.x < 0 || b.x + b.width > view.width; })
            .map(t => t.textContent);
        })()""")
    assert outside == []
