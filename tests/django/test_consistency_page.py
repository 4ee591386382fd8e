"""The admin's Consistency page with Django's test client: permissions
(anonymous, staff without permission, with view, with apply, with accept),
CSRF on apply, filters and pagination, links to the rows' admin pages, an
apply that changes exactly the planned rows (and nothing when the plan
changed), accepting findings, conflicts, the page without the history (and
with the history read from check_runs alone), and the report download.

The data: 200 generated loans (support.fresh_data), a full check recorded,
one injected case of every defect, a second full check recorded: the
injected findings are the new ones."""
import math

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.test import Client, override_settings
from django.urls import reverse

from motofinai_consistency import dashboard
from page_support import (ACCEPT, APPLY, PAGE, TABLES, VIEW, Page, has, reset_history, user, versions)
from support import fresh_data, sql, value

def record():
    return value("SELECT id FROM motofinai.run_check('system')")


@pytest.fixture
def history():
    """Two recorded full checks: before and after injecting one case of every defect."""
    fresh_data()
    reset_history()
    first = record()
    sql("SELECT motofinai_gen.inject(1)")
    second = record()
    expected = sql("SELECT severity, code, entity, entity_id, message FROM motofinai.check_system_consistency()")
    before = {(c, e, i) for c, e, i in sql(
        "SELECT e ->> 'code', e ->> 'entity', (e ->> 'entity_id')::bigint FROM motofinai.check_runs r, "
        "jsonb_array_elements(r.findings) e WHERE r.id = %s", [first])}
    return {"first": first, "second": second, "expected": expected,
            "new": [f for f in expected if (f[1], f[2], f[3]) not in before]}


def client_for(u, **kwargs):
    c = Client(**kwargs)
    c.force_login(u)
    return c


@pytest.fixture
def viewer():
    return client_for(user("mf_viewer", VIEW))


@pytest.fixture
def applier():
    return client_for(user("mf_applier", VIEW, APPLY))


@pytest.fixture
def superuser(staff_client):
    return staff_client


def all_findings(c, query=""):
    """Every finding row over all pages."""
    rows, page = [], 1
    while True:
        r = c.get(f"{PAGE}?{query}&page={page}")
        assert r.status_code == 200
        rows += Page(r.content.decode()).findings()
        if page >= r.context["findings"].data.pages:
            return rows, r
        page += 1


def key(row):
    a = row["attrs"]
    return (a["data-severity"], a["data-code"], a["data-entity"], int(a["data-entity-id"]) if a["data-entity-id"] else None)


# --- permissions -------------------------------------------------------------

@pytest.mark.smoke
def test_anonymous_users_are_sent_to_the_login_page(history):
    c = Client()
    for method, url in (("get", PAGE), ("get", PAGE + "report.html"), ("post", PAGE + "apply/"),
                        ("post", PAGE + "run/"), ("get", PAGE + "accept/")):
        r = getattr(c, method)(url)
        assert r.status_code == 302 and r["Location"].startswith("/admin/login/"), url


def test_staff_without_the_permission_get_403_and_no_entry_in_the_index(history):
    c = client_for(user("mf_nobody"))
    for method, url in (("get", PAGE), ("get", PAGE + "report.html"), ("post", PAGE + "apply/"),
                        ("post", PAGE + "run/"), ("get", PAGE + "accept/"), ("post", PAGE + "unaccept/")):
        assert getattr(c, method)(url).status_code == 403, url
    assert PAGE not in c.get("/admin/").content.decode()
    # not staff at all: the admin's login, whatever the permissions
    r = client_for(user("mf_not_staff", VIEW, APPLY, staff=False)).get(PAGE)
    assert r.status_code == 302 and r["Location"].startswith("/admin/login/")


@pytest.mark.smoke
def test_the_view_permission_shows_the_page_without_any_action(history, viewer):
    index = viewer.get("/admin/").content.decode()
    assert f'href="{PAGE}"' in index
    r = viewer.get(PAGE + "?plan=1")
    assert r.status_code == 200
    page = Page(r.content.decode())
    assert "full-check-status" in page.ids and "trend-chart" in page.ids and "findings-table" in page.ids
    assert page.repairs(), "the dry run is shown to viewers"
    assert "apply-form" not in page.ids and "run-system" not in page.ids
    assert 'Applying repairs needs the permission' in page.html
    assert not any("accept/?" in (link or "") for link in page.links)
    before = versions()
    assert viewer.post(PAGE + "apply/", {"loans": r.context["plan_loans"], "digest": r.context["plan_digest"]}
                       ).status_code == 403
    assert viewer.post(PAGE + "run/", {"scope": "system"}).status_code == 403
    assert viewer.get(PAGE + "accept/?code=overdue&entity=loan&entity_id=1").status_code == 403
    assert viewer.post(PAGE + "unaccept/", {"code": "overdue", "entity": "loan"}).status_code == 403
    assert versions() == before
    assert value("SELECT count(*) FROM motofinai.check_runs") == 2


def test_the_apply_permission_shows_the_apply_button_and_the_run_buttons(history, applier):
    page = Page(applier.get(PAGE + "?plan=1").content.decode())
    assert "apply-form" in page.ids and "run-system" in page.ids and "run-quick" in page.ids
    r = applier.post(PAGE + "run/", {"scope": "quick"})
    assert r.status_code == 302
    assert value("SELECT scope FROM motofinai.check_runs ORDER BY id DESC LIMIT 1") == "quick"
    assert LogEntry.objects.filter(change_message__startswith="Recorded quick check run").exists()


def test_csrf_is_required_to_apply(history):
    c = client_for(user("mf_applier", VIEW, APPLY), enforce_csrf_checks=True)
    r = c.get(PAGE + "?plan=1")
    form = {"loans": r.context["plan_loans"], "digest": r.context["plan_digest"], "scope": "system"}
    before = versions()
    assert c.post(PAGE + "apply/", form).status_code == 403
    assert versions() == before, "refused without the token: nothing changed"
    r = c.post(PAGE + "apply/", {**form, "csrfmiddlewaretoken": c.cookies["csrftoken"].value})
    assert r.status_code == 200 and Page(r.content.decode()).ids["apply-result"]["data-result"] == "applied"
    assert versions() != before


# --- what the page shows -----------------------------------------------------

@pytest.mark.smoke
def test_the_summary_runs_and_current_findings_are_the_last_runs(history, superuser):
    r = superuser.get(PAGE)
    page = Page(r.content.decode())
    status = page.ids["full-check-status"]
    assert status["data-state"] == "fresh" and "mf-status-errors" in status["class"]
    runs = page.table("runs")
    assert [int(row["attrs"]["data-run"]) for row in runs] == [history["second"], history["first"]]
    rows, _ = all_findings(superuser, "accepted=show")
    assert sorted(key(row) for row in rows) == sorted((s, c, e, i) for s, c, e, i, m in history["expected"])
    new = {key(row) for row in rows if "is-new" in row["attrs"]["class"]}
    assert new == {(s, c, e, i) for s, c, e, i, m in history["new"]}
    counts = r.context["findings"].data.counts
    assert counts["errors"] == sum(1 for f in history["expected"] if f[0] == "error")
    assert counts["new"] == len(history["new"])


def test_a_full_check_older_than_the_configured_age_is_flagged(history, superuser):
    sql("UPDATE motofinai.check_runs SET started_at = started_at - interval '3 days', "
        "finished_at = finished_at - interval '3 days'")
    status = Page(superuser.get(PAGE).content.decode()).ids["full-check-status"]
    assert status["data-state"] == "stale"
    with override_settings(MOTOFINAI_CONSISTENCY={"FULL_CHECK_MAX_AGE_HOURS": 100}):
        assert Page(superuser.get(PAGE).content.decode()).ids["full-check-status"]["data-state"] == "fresh"
    reset_history()
    assert Page(superuser.get(PAGE).content.decode()).ids["full-check-status"]["data-state"] == "missing"


def test_filters_by_severity_code_entity_and_new(history, superuser):
    expected = history["expected"]
    rows, _ = all_findings(superuser, "severity=error")
    assert rows and {key(r)[0] for r in rows} == {"error"}
    assert len(rows) == sum(1 for f in expected if f[0] == "error")
    rows, r = all_findings(superuser, "code=overdue")
    assert len(rows) == sum(1 for f in expected if f[1] == "overdue") > 1
    assert ("overdue", "warning", len(rows)) in r.context["findings"].data.codes
    rows, _ = all_findings(superuser, "entity=payment")
    assert {key(r)[2] for r in rows} == {"payment"} and len(rows) == sum(1 for f in expected if f[2] == "payment")
    rows, _ = all_findings(superuser, "new=1")
    assert sorted(key(r) for r in rows) == sorted((s, c, e, i) for s, c, e, i, m in history["new"])
    rows, _ = all_findings(superuser, "severity=error&entity=loan&new=1")
    assert sorted(key(r) for r in rows) == sorted(
        (s, c, e, i) for s, c, e, i, m in history["new"] if s == "error" and e == "loan")
    # unknown values are no filter; the form keeps what was chosen
    assert len(all_findings(superuser, "severity=bogus")[0]) == len(expected)
    page = Page(superuser.get(PAGE + "?code=overdue").content.decode())
    assert 'value="overdue" selected' in page.html


def test_pages_partition_the_findings(history, superuser):
    with override_settings(MOTOFINAI_CONSISTENCY={"ADMIN_PAGE_SIZE": 7}):
        rows, r = all_findings(superuser)
        assert r.context["findings"].data.pages == math.ceil(len(history["expected"]) / 7) > 2
        assert len(rows) == len(history["expected"]) == len({key(r) + (r["cells"][3],) for r in rows})
        page = Page(superuser.get(PAGE + "?severity=warning&page=2").content.decode())
        assert any("severity=warning" in (link or "") and "page=3" in link for link in page.links)
        assert "page 2 of" in page.html


def test_findings_link_to_the_admin_change_pages_the_user_may_see(history, superuser):
    rows, _ = all_findings(superuser)
    models = {"loan": "finance_loanapplication", "schedule": "finance_paymentschedule",
              "payment": "finance_payment", "motor": "finance_motor"}
    seen = set()
    for row in rows:
        severity, code, entity, entity_id = key(row)
        if entity in models:
            url = reverse(f"admin:{models[entity]}_change", args=[entity_id])
            assert url in row["links"], (code, entity, entity_id)
            seen.add(entity)
        else:
            assert not [link for link in row["links"] if "/change/" in link], (code, entity)
    assert seen == set(models)
    # a link of each kind opens (the rows of a deleted parent excepted: pick existing ones)
    for entity, model in models.items():
        table = TABLES[entity]
        row = next(r for r in rows if key(r)[2] == entity
                   and value(f"SELECT count(*) FROM {table} WHERE id = %s", [key(r)[3]]))
        assert superuser.get(reverse(f"admin:{model}_change", args=[key(row)[3]])).status_code == 200
    # an installment's finding also links to its loan
    schedule = next(r for r in rows if key(r)[1] == "payment_not_applied")
    assert any("/finance/loanapplication/" in link for link in schedule["links"])
    # without permission on those models: no links
    viewer = client_for(user("mf_viewer", VIEW))
    page = Page(viewer.get(PAGE).content.decode())
    assert not [link for link in page.links if "/admin/finance/" in (link or "")]
    payments_only = client_for(user("mf_payments", VIEW, "finance.view_payment"))
    links = {link for link in Page(payments_only.get(PAGE).content.decode()).links
             if "/admin/finance/" in (link or "") and link.endswith("/change/")}
    assert links and all("/admin/finance/payment/" in link for link in links)


# --- repairs -----------------------------------------------------------------

@pytest.mark.smoke
def test_apply_changes_exactly_the_planned_rows(history, applier):
    r = applier.get(PAGE)
    assert "plan-button" in Page(r.content.decode()).ids, "the dry run runs only when asked"
    assert r.context["plan"] is None
    r = applier.get(PAGE + "?plan=1")
    plan = r.context["plan"]
    planned = [p for p in plan if not p["note"]]
    assert {p["code"] for p in planned} == {"payment_not_applied", "overdue_status_stale", "paid_not_completed"}
    page = Page(r.content.decode())
    assert len(page.repairs()) == len(plan)
    assert page.hidden("digest") == r.context["plan_digest"] and page.hidden("loans") == r.context["plan_loans"]
    before = versions()
    values = {(p["entity"], p["entity_id"]): sql(f"SELECT row_to_json(t)::text FROM {TABLES[p['entity']]} t "
                                                  "WHERE id = %s", [p["entity_id"]]) for p in planned}
    r = applier.post(PAGE + "apply/", {"loans": page.hidden("loans"), "digest": page.hidden("digest")})
    assert r.status_code == 200
    result = Page(r.content.decode())
    assert result.ids["apply-result"]["data-result"] == "applied"
    assert f"Applied {len(planned)} repairs" in result.html
    after = versions()
    changed = {k for k in after if after[k] != before.get(k)} | (set(before) - set(after))
    assert changed == {(TABLES[p["entity"]], p["entity_id"]) for p in planned}
    for p in planned:
        status = value(f"SELECT status FROM {TABLES[p['entity']]} WHERE id = %s", [p["entity_id"]])
        assert status == p["changes"]["status"]["to"], p
        assert values[(p["entity"], p["entity_id"])] != sql(
            f"SELECT row_to_json(t)::text FROM {TABLES[p['entity']]} t WHERE id = %s", [p["entity_id"]])
    assert LogEntry.objects.filter(change_message__startswith=f"Applied {len(planned)} consistency repair").exists()
    # the same plan again: nothing left to repair for these loans, nothing applied
    assert dashboard.plan("default", [int(x) for x in page.hidden("loans").split(",")]) == []
    again = applier.post(PAGE + "apply/", {"loans": page.hidden("loans"), "digest": page.hidden("digest")})
    assert Page(again.content.decode()).ids["apply-result"]["data-result"] == "changed"
    assert versions() == after


def test_a_plan_that_changed_meanwhile_applies_nothing(history, applier):
    r = applier.get(PAGE + "?plan=1")
    page = Page(r.content.decode())
    stale = next(p for p in r.context["plan"] if p["code"] == "overdue_status_stale")
    # someone marks that installment overdue by hand after the plan was shown
    sql("UPDATE loans_paymentschedule SET status = 'overdue' WHERE id = %s", [stale["entity_id"]])
    before = versions()
    r = applier.post(PAGE + "apply/", {"loans": page.hidden("loans"), "digest": page.hidden("digest")})
    result = Page(r.content.decode())
    assert result.ids["apply-result"]["data-result"] == "changed"
    assert versions() == before, "nothing applied"
    assert len(result.repairs()) == len(r.context["plan"]) == len(page.repairs()) - 1, "the plan as it is now"
    assert result.hidden("digest") != page.hidden("digest")


def test_an_apply_without_a_plan_is_refused(history, applier):
    before = versions()
    r = applier.post(PAGE + "apply/", {"loans": "", "digest": ""})
    assert r.status_code == 302 and versions() == before
    assert applier.get(PAGE + "apply/").status_code == 405


# --- accepted findings -------------------------------------------------------

needs_accept = pytest.mark.skipif("not __import__('page_support').has('accept_finding')",
                                  reason="this extension version has no motofinai.accept_finding")


@needs_accept
def test_accepting_a_finding_with_a_reason_and_an_expiry_and_withdrawing_it(history):
    c = client_for(user("mf_acceptor", VIEW, ACCEPT))
    rows, _ = all_findings(c)
    overdue = next(r for r in rows if key(r)[1] == "overdue")
    _, code, entity, entity_id = key(overdue)
    accept_link = next(link for link in overdue["links"] if "accept/?" in link)
    form = c.get(accept_link)
    assert form.status_code == 200
    html = form.content.decode()
    assert '<label for="id_reason">' in html and '<label for="id_until">' in html
    post = {"code": code, "entity": entity, "entity_id": entity_id}
    assert "This field is required" in c.post(PAGE + "accept/", {**post, "reason": "  "}).content.decode()
    assert "after today" in c.post(PAGE + "accept/", {**post, "reason": "x", "until": "2000-01-01"}).content.decode()
    assert value("SELECT count(*) FROM motofinai.accepted_findings") == 0
    r = c.post(PAGE + "accept/", {**post, "reason": "paid in cash, receipt on file", "until": "2099-12-31"})
    assert r.status_code == 302
    assert sql("SELECT code, entity, entity_id, reason, until::date::text FROM motofinai.accepted_findings") == [
        (code, entity, entity_id, "paid in cash, receipt on file", "2099-12-31")]
    assert LogEntry.objects.filter(change_message__startswith=f"Accepted {code} on {entity} {entity_id}").exists()
    hidden, r = all_findings(c)
    assert key(overdue) not in {key(x) for x in hidden}, "accepted findings are hidden by default"
    assert r.context["findings"].data.counts["accepted"] == 1
    only, _ = all_findings(c, "accepted=only")
    assert [key(x) for x in only] == [key(overdue)] and "is-accepted" in only[0]["attrs"]["class"]
    page = Page(c.get(PAGE).content.decode())
    [accepted] = page.table("accepted-table")
    assert "paid in cash, receipt on file" in accepted["cells"]
    # a viewer sees the acceptance but may not withdraw it
    viewer_page = Page(client_for(user("mf_viewer", VIEW)).get(PAGE).content.decode())
    assert "paid in cash, receipt on file" in viewer_page.html and "Withdraw" not in viewer_page.html
    r = c.post(PAGE + "unaccept/", {"code": code, "entity": entity, "entity_id": entity_id})
    assert r.status_code == 302 and value("SELECT count(*) FROM motofinai.accepted_findings") == 0


@needs_accept
def test_accepting_every_finding_of_a_code(history, superuser):
    r = superuser.post(PAGE + "accept/", {"code": "overdue", "entity": "loan", "entity_id": 1, "all_entities": "on",
                                          "reason": "the collections team follows these"})
    assert r.status_code == 302
    assert sql("SELECT entity_id FROM motofinai.accepted_findings") == [(None,)]
    rows, _ = all_findings(superuser)
    assert "overdue" not in {key(x)[1] for x in rows}


# --- conflicts ---------------------------------------------------------------

def test_conflicts_hot_rows_and_recent_conflicts_with_links(history, superuser):
    from finance.models import LoanApplication
    from motofinai.apps.core.exceptions import ConcurrencyException

    sql("SELECT motofinai.conflict_stats_reset()")
    a, b = LoanApplication.objects.get(pk=5), LoanApplication.objects.get(pk=5)
    a.notes = "first"
    a.save()
    b.notes = "second"
    with pytest.raises(ConcurrencyException):
        b.save()
    page = Page(superuser.get(PAGE).content.decode())
    [loans] = [r for r in page.table("conflict-tables") if r["attrs"].get("data-table") == "loans_loanapplication"]
    assert loans["cells"][1:3] == ["2", "1"], "two updates checked, one conflict (the second, rejected)"
    hot = [r for r in page.rows if r["table"] == "hot-rows" and not r["head"]]
    assert any(r["cells"][0] == "5" and "/admin/finance/loanapplication/5/change/" in r["links"] for r in hot)
    [recent] = page.table("recent-conflicts")
    assert recent["cells"][1] == "loans_loanapplication" and "/admin/finance/loanapplication/5/change/" in recent["links"]


def test_statistics_off_is_said_clearly(history, superuser, monkeypatch):
    off = ("off: add motofinai_consistency to shared_preload_libraries and restart to collect conflict "
           "statistics")
    monkeypatch.setattr(dashboard, "conflicts", lambda using, feats: dashboard.Conflicts(off, [], {}, [], [], []))
    page = Page(superuser.get(PAGE).content.decode())
    assert "statistics-off" in page.ids
    assert ("Conflict statistics are off: add motofinai_consistency to shared_preload_libraries and restart to "
            "collect conflict statistics.") in " ".join(page.html.split())


# --- older extensions --------------------------------------------------------

def features_without(*names):
    real = dashboard.features

    def patched(using="default"):
        feats = real(using)
        feats.relations = {k: v for k, v in feats.relations.items() if k not in names}
        feats.functions = frozenset(f for f in feats.functions if f not in names)
        return feats
    return patched


def test_without_check_history_the_panels_say_so(history, superuser, monkeypatch):
    monkeypatch.setattr(dashboard, "features", features_without(
        "check_runs", "finding_trends", "current_findings", "accepted_findings", "accept_finding",
        "unaccept_finding", "run_check"))
    r = superuser.get(PAGE)
    assert r.status_code == 200
    page = Page(r.content.decode())
    text = " ".join(page.html.split())
    assert page.ids["full-check-status"]["data-state"] == "unknown"
    assert "Check runs: history not available in this extension version." in text
    assert "Trends: history not available in this extension version." in text
    assert "Current findings: history not available in this extension version." in text
    assert "findings-table" not in page.ids and "trend-chart" not in page.ids and "accepted" not in page.ids
    assert "conflict-tables" in page.ids, "the conflicts do not need the history"


def test_a_database_without_the_extension_says_so(superuser, monkeypatch):
    from motofinai_consistency import admin_page

    monkeypatch.setattr(admin_page.ConsistencyAdmin, "using", "noext")
    r = superuser.get(PAGE)
    assert r.status_code == 200
    page = Page(r.content.decode())
    assert "no-extension" in page.ids and f'database "{settings.DB}_noext"' in page.html
    assert "findings-table" not in page.ids and "conflict-tables" not in page.ids


def test_without_the_history_views_the_page_reads_check_runs_alike(history, superuser, monkeypatch):
    if not (has("current_findings") and has("finding_trends")):
        pytest.skip("this extension version has no current_findings / finding_trends: the page reads check_runs")
    rows_view, r_view = all_findings(superuser, "accepted=show")
    trend_view = r_view.context["trend_rows"]
    monkeypatch.setattr(dashboard, "features", features_without("current_findings", "finding_trends"))
    rows_runs, r_runs = all_findings(superuser, "accepted=show")
    assert sorted((key(r), "is-new" in r["attrs"]["class"]) for r in rows_runs) == \
        sorted((key(r), "is-new" in r["attrs"]["class"]) for r in rows_view)
    strip = [{k: row[k] for k in ("code", "severity", "counts", "latest", "max")} for row in trend_view]
    assert strip == [{k: row[k] for k in ("code", "severity", "counts", "latest", "max")}
                     for row in r_runs.context["trend_rows"]]


# --- the report --------------------------------------------------------------

def test_the_report_download_is_one_self_contained_file(history, viewer):
    r = viewer.get(PAGE + "report.html?scope=system")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
    assert r["Content-Disposition"].startswith('attachment; filename="motofinai-consistency-system-')
    html = r.content.decode()
    assert_self_contained(html)
    page = Page(html)
    assert len(page.findings()) == len(history["expected"])
    assert "trend-chart" in page.ids


def assert_self_contained(html):
    lowered = html.lower()
    for needle in ("<script", "<link", "<img", "<iframe", "src=", "@import", "url(", "http://", "https://"):
        if needle in ("http://", "https://"):
            # the SVG namespace is a name, not a fetch
            lowered = lowered.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert needle not in lowered, needle
