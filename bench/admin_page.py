"""bench/admin_page.sh's measurement: the Consistency page's views through
Django's test client, in process, as a superuser (every panel shown): the
median and the slowest of N loads after a warm-up, the queries each made,
and the response's size. Runs in tests/django's project."""
import os
import statistics
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from motofinai_consistency import dashboard  # noqa: E402

PAGE = "/admin/motofinai_consistency/consistency/"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def timed(client, url, n=N):
    client.get(url)   # warm-up
    times, in_sql, queries, size = [], [], 0, 0
    for _ in range(n):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries, size = len(captured), len(response.content)
        in_sql.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
    return statistics.median(times), max(times), statistics.median(in_sql), queries, size


def main():
    model = get_user_model()
    admin = model.objects.filter(username="bench").first() or model.objects.create_superuser("bench", "b@x", "pw")
    client = Client()
    client.force_login(admin)
    with connection.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM loans_loanapplication), (SELECT count(*) FROM motofinai.check_runs), "
                    "(SELECT errors + warnings FROM motofinai.check_runs ORDER BY id DESC LIMIT 1), "
                    "(SELECT extversion FROM pg_extension WHERE extname = 'motofinai_consistency')")
        loans, runs, findings, version = cur.fetchone()
    print(f"dataset: {loans} loans, {runs} check runs, {findings} findings in the last run; extension {version}")
    views = [
        ("page (first page of findings, every panel)", PAGE),
        ("page, filtered (code=overdue, page 3)", PAGE + "?code=overdue&page=3"),
        ("page, new findings only", PAGE + "?new=1"),
        ("page, last page", PAGE + "?page=1000000"),
    ]
    rows = [(name, *timed(client, url)) for name, url in views]
    # the same without the history views (an extension that has only check_runs)
    real = dashboard.features

    def without_views(using="default"):
        feats = real(using)
        feats.relations = {k: v for k, v in feats.relations.items() if k not in ("current_findings", "finding_trends")}
        return feats
    dashboard.features = without_views
    rows.append(("page, read from check_runs alone (no history views)", *timed(client, PAGE)))
    dashboard.features = real
    rows.append(("the dry run (on demand: ?plan=1, up to 100 loans)", *timed(client, PAGE + "?plan=1", 3)))
    rows.append(("the report download (every finding)", *timed(client, PAGE + "report.html", 3)))
    print(f"{'view':<58} {'median ms':>10} {'max ms':>8} {'in SQL':>7} {'queries':>8} {'KiB':>6}")
    for name, median, worst, sql_ms, queries, size in rows:
        print(f"{name:<58} {median:>10.0f} {worst:>8.0f} {sql_ms:>7.0f} {queries:>8} {size // 1024:>6}")
    page = rows[0][1]
    print(f"the page: median {page:.0f} ms ({'under' if page < 1000 else 'OVER'} the 1 s target)")


if __name__ == "__main__":
    main()
