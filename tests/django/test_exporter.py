"""The metrics files for Prometheus: contrib/postgres_exporter/queries.yaml
and contrib/sql_exporter/sql_exporter.yml (the same queries, word for word).
Every query of both runs as a role with only the grants the files ask for and
returns exactly the columns its metrics declare. With POSTGRES_EXPORTER set
to a postgres_exporter binary, and SQL_EXPORTER to a sql_exporter binary
(Debian's prometheus-sql-exporter, justwatchcom/sql_exporter), the real
exporters run the files, logged in as that role, and serve every metric."""
import os
import re
import socket
import subprocess
import time
import unittest
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path

import yaml
from django.conf import settings
from django.db import connection

from finance.models import LoanApplication
from motofinai_consistency.concurrency import ConcurrencyException
from support import as_role, create_role, drop_role, fresh_data, sql, value

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
QUERIES = CONTRIB / "postgres_exporter" / "queries.yaml"
SQL_EXPORTER_CONFIG = CONTRIB / "sql_exporter" / "sql_exporter.yml"
USAGES = {"LABEL", "COUNTER", "GAUGE", "DISCARD", "MAPPEDMETRIC", "DURATION"}
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SQL_EXPORTER_KEYS = {"name", "help", "labels", "values", "query", "allow_zero_rows"}
ROLE = "motofinai_django_metrics"  # the grants the files ask for, nothing more (and LOGIN, for the exporters)
LOANS = "loans_loanapplication"


def load(path=QUERIES):
    with open(path) as f:
        return yaml.safe_load(f)


def sql_exporter_queries():
    return load(SQL_EXPORTER_CONFIG)["jobs"][0]["queries"]


def declared(spec):
    """[(column, usage)] in the order of the metrics list."""
    return [(column, m["usage"]) for entry in spec["metrics"] for column, m in entry.items()]


def run(query):
    with connection.cursor() as cur:
        cur.execute(query)
        return [c.name for c in cur.description], cur.fetchall()


def make_activity():
    """Something for every query to report, on loan 5: 3 saves and 1 conflict
    while enforcing; then, observing with strict on, the stale save let
    through and a blind write let through; a recorded quick check over data
    with injected defects; and inventory_motor left in observe mode (the
    caller's tearDown sets it back: restore_modes)."""
    fresh_data()  # every table enforcing, not strict
    sql("SELECT motofinai_gen.inject(1)")
    sql("SELECT motofinai.conflict_stats_reset()")
    sql("SET compute_query_id = on")  # query ids for the per-statement view, whatever the server's setting
    try:
        stale = LoanApplication.objects.get(pk=5)
        loan = LoanApplication.objects.get(pk=5)
        for _ in range(3):
            loan.save()
        try:
            stale.save()
        except ConcurrencyException:
            pass
        else:
            raise AssertionError("the stale save was not rejected")
        sql("SELECT motofinai.enable_versioning(%s, strict => true, mode => 'observe')", [LOANS])
        try:
            stale.save()  # still at the version it read: observed, let through
            LoanApplication.objects.filter(pk=5).update(notes="blind write")  # strict, observed
        finally:
            sql("SELECT motofinai.enable_versioning(%s)", [LOANS])
    finally:
        sql("RESET compute_query_id")
    sql("SELECT motofinai.set_versioning_mode('inventory_motor', 'observe')")
    assert sql("SELECT 1 FROM motofinai.conflict_stats WHERE table_name = %s::regclass", [LOANS]), (
        "conflict statistics are not collected: is motofinai_consistency preloaded? Are the 64 slots of the "
        "cluster used up (a dropped database keeps its slots until restart)?")
    return sql("SELECT errors, warnings FROM motofinai.run_check('quick')")[0]


def restore_modes():
    sql("SELECT motofinai.set_versioning_mode('inventory_motor', 'enforce')")


class WithActivity(unittest.TestCase):
    """The activity above, and the metrics role."""

    @classmethod
    def setUpClass(cls):
        cls.spec = load()
        try:
            cls.errors, cls.warnings = make_activity()
        except BaseException:
            restore_modes()
            raise
        create_role(ROLE, "GRANT USAGE ON SCHEMA motofinai TO {role}", f"GRANT SELECT ON {LOANS} TO {{role}}")
        sql(f"ALTER ROLE {ROLE} LOGIN")

    @classmethod
    def tearDownClass(cls):
        restore_modes()
        drop_role(ROLE)


class QueriesFileTests(WithActivity):
    def test_file_format(self):
        self.assertTrue(self.spec)
        for namespace, spec in self.spec.items():
            self.assertLessEqual(set(spec), {"query", "metrics", "master", "cache_seconds"}, namespace)
            self.assertIsInstance(spec["query"], str)
            self.assertTrue(spec.get("master"), f"{namespace}: master: true (the Motofinai database only)")
            for entry in spec["metrics"]:
                self.assertEqual(len(entry), 1, namespace)
                (column, metric), = entry.items()
                self.assertIn(metric["usage"], USAGES, f"{namespace}.{column}")
                self.assertTrue(metric["description"].strip(), f"{namespace}.{column}")
                self.assertRegex(f"{namespace}_{column}", METRIC_NAME)
            self.assertNotIn("key", [c for c, _ in declared(spec)], f"{namespace}: row keys are no labels")

    def test_each_query_returns_exactly_its_declared_columns(self):
        for namespace, spec in self.spec.items():
            with self.subTest(namespace), as_role(ROLE):
                columns, rows = run(spec["query"])
                self.assertEqual(columns, [c for c, _ in declared(spec)])
                self.assertTrue(rows, "no rows")
                for row in rows:
                    for (column, usage), cell in zip(declared(spec), row):
                        kind = str if usage == "LABEL" else (int, float, Decimal)
                        self.assertIsInstance(cell, kind, f"{column} = {cell!r}")

    def rows(self, namespace):
        with as_role(ROLE):
            columns, rows = run(self.spec[namespace]["query"])
        return [dict(zip(columns, row)) for row in rows]

    def test_values(self):
        loans = [r for r in self.rows("motofinai_conflicts") if r["table_name"] == LOANS]
        self.assertEqual([(r["conflicts"], r["strict_rejections"], r["observed_conflicts"],
                           r["observed_strict_rejections"]) for r in loans], [(1, 0, 1, 1)])
        self.assertGreater(loans[0]["last_conflict_timestamp_seconds"], time.time() - 600)
        hot = {(r["table_name"], r["row_id"]): r for r in self.rows("motofinai_hot_rows")}
        # 3 saves, the observed stale save and the observed blind write
        self.assertEqual(hot[(LOANS, "5")]["modifications"], 5)
        self.assertEqual(hot[(LOANS, "5")]["conflicts"], 1)
        self.assertEqual(hot[(LOANS, "5")]["observed_conflicts"], 1)  # the stale save (the blind write is no stale one)
        self.assertEqual({t for t, _ in hot}, {LOANS}, "hot rows only of the tables the role may read")
        tables = {r["table_name"]: (r["observe"], r["strict"], r["trigger_ok"])
                  for r in self.rows("motofinai_versioned_table")}
        self.assertEqual(tables, {"inventory_motor": (1, 0, 1), LOANS: (0, 0, 1), "loans_paymentschedule": (0, 0, 1),
                                  "payments_payment": (0, 0, 1)})
        log = {(r["table_name"], r["mode"], r["kind"]): r["entries"] for r in self.rows("motofinai_recent_conflicts")}
        self.assertEqual(log, {(LOANS, "enforce", "stale_version"): 1, (LOANS, "observe", "stale_version"): 1,
                               (LOANS, "observe", "version_not_stated"): 1})
        statements = [r for r in self.rows("motofinai_statement_conflicts") if r["table_name"] == LOANS]
        # the save's UPDATE (rejected, then let through) and the blind write
        self.assertEqual(sorted((r["conflicts"], r["observed_conflicts"]) for r in statements), [(0, 1), (1, 1)])
        self.assertNotIn("0", [r["query_id"] for r in statements])
        quick = [r for r in self.rows("motofinai_last_check") if r["scope"] == "quick"]
        self.assertEqual([(r["errors"], r["warnings"]) for r in quick], [(self.errors, self.warnings)])
        findings = [r for r in self.rows("motofinai_last_check_findings") if r["scope"] == "quick"]
        self.assertEqual(sum(r["findings"] for r in findings), self.errors + self.warnings)
        self.assertEqual([(r["enabled"], r["conflict_log_size"]) for r in self.rows("motofinai_statistics")],
                         [(1, int(value("SHOW motofinai.conflict_log_size")))])


class SqlExporterFileTests(WithActivity):
    """contrib/sql_exporter/sql_exporter.yml: the format of sql_exporter 0.4
    (justwatchcom), and the same queries as queries.yaml."""

    def test_file_format_and_the_same_queries_as_postgres_exporter(self):
        config = load(SQL_EXPORTER_CONFIG)
        self.assertEqual(set(config), {"jobs"})
        (job,) = config["jobs"]
        self.assertEqual(set(job), {"name", "interval", "connections", "queries"})
        self.assertEqual(job["connections"], ["{{MOTOFINAI_DSN}}"])
        queries = job["queries"]
        self.assertEqual([q["name"] for q in queries], list(self.spec), "the same metrics, in the same order")
        for q in queries:
            with self.subTest(q["name"]):
                self.assertLessEqual(set(q), SQL_EXPORTER_KEYS)
                self.assertTrue(q["help"].strip())
                self.assertRegex("sql_" + q["name"], METRIC_NAME)
                spec = self.spec[q["name"]]
                self.assertEqual(q["query"], spec["query"])
                self.assertNotIn("{{", q["query"] + q["help"])  # the exporter would take it for a variable
                self.assertEqual(q["labels"], [c for c, u in declared(spec) if u == "LABEL"])
                self.assertEqual(q["values"], [c for c, u in declared(spec) if u != "LABEL"])
                # zero rows is a failed query there unless allowed: only the one-row query may not
                self.assertEqual(q.get("allow_zero_rows", False), q["name"] != "motofinai_statistics")

    def test_each_query_returns_its_labels_and_values(self):
        for q in sql_exporter_queries():
            with self.subTest(q["name"]), as_role(ROLE):
                columns, rows = run(q["query"])
                self.assertEqual(columns, q["labels"] + q["values"])
                self.assertTrue(rows, "no rows")
                for row in rows:
                    cells = dict(zip(columns, row))
                    for label in q["labels"]:
                        self.assertIsInstance(cells[label], str, f"{label} = {cells[label]!r}")
                    for column in q["values"]:  # sql_exporter fails a row with a NULL value
                        self.assertIsInstance(cells[column], (int, float, Decimal), f"{column} = {cells[column]!r}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(argv, env, done, timeout=30):
    """Start an exporter, scrape /metrics until done(text) (or the timeout);
    return the last text and the exporter's stderr."""
    port = free_port()
    exporter = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = None
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and exporter.poll() is None:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                if done(text):
                    break
            except OSError:
                pass
            time.sleep(0.1)
    finally:
        exporter.terminate()
        stderr = exporter.communicate(timeout=10)[1].decode()
    if text is None:
        raise AssertionError(f"the exporter did not answer: {stderr}")
    return text, stderr


def series(text, metric, **labels):
    """The values of the series of `metric` that carry these labels."""
    found = []
    for line in text.splitlines():
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if match and match[1] == metric:
            pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
            if all(pairs.get(k) == v for k, v in labels.items()):
                found.append(float(match[3]))
    return found


def database():
    return settings.DATABASES["default"]


@unittest.skipUnless(os.environ.get("POSTGRES_EXPORTER"), "set POSTGRES_EXPORTER to a postgres_exporter binary")
class RealExporterTests(WithActivity):
    def test_exporter_serves_every_declared_metric(self):
        db = database()
        env = dict(os.environ, DATA_SOURCE_NAME=f"host={db['HOST']} port={db['PORT']} user={ROLE} "
                                                 f"dbname={db['NAME']} sslmode=disable")
        text, stderr = serve([os.environ["POSTGRES_EXPORTER"], "--web.listen-address=127.0.0.1:{port}",
                              "--disable-default-metrics", "--disable-settings-metrics",
                              f"--extend.query-path={QUERIES}"], env, lambda text: "motofinai_" in text)
        self.assertNotIn("level=error", stderr)
        self.assertEqual(series(text, "pg_exporter_last_scrape_error"), [0])
        self.assertEqual(series(text, "pg_exporter_user_queries_load_error"), [0])
        for namespace, spec in self.spec.items():
            for column, usage in declared(spec):
                if usage != "LABEL":
                    self.assertTrue(series(text, f"{namespace}_{column}"), f"{namespace}_{column} is not served")
        self.assertEqual(series(text, "motofinai_conflicts_conflicts", table_name=LOANS), [1])
        self.assertEqual(series(text, "motofinai_versioned_table_observe", table_name="inventory_motor"), [1])
        self.assertEqual(series(text, "motofinai_recent_conflicts_entries", table_name=LOANS, mode="observe",
                                kind="version_not_stated"), [1])


@unittest.skipUnless(os.environ.get("SQL_EXPORTER"),
                     "set SQL_EXPORTER to a sql_exporter 0.4 binary (Debian's prometheus-sql-exporter: "
                     "apt-get download prometheus-sql-exporter; dpkg-deb -x, usr/bin/prometheus-sql-exporter)")
class RealSqlExporterTests(WithActivity):
    def test_sql_exporter_serves_every_declared_metric(self):
        db = database()
        query = urllib.parse.urlencode({"host": db["HOST"], "port": db["PORT"], "sslmode": "disable"})
        env = dict(os.environ, MOTOFINAI_DSN=f"postgres://{ROLE}@/{db['NAME']}?{query}")
        queries = sql_exporter_queries()

        def every_query_ran(text):  # the job runs at start; its metrics appear when each query has run
            return all(re.search(rf'(?m)^sql_exporter_last_scrape_failed{{.*query="{q["name"]}".*}}', text)
                       for q in queries)

        text, stderr = serve([os.environ["SQL_EXPORTER"], "-web.listen-address", "127.0.0.1:{port}",
                              "-config.file", str(SQL_EXPORTER_CONFIG)], env, every_query_ran)
        self.assertNotRegex(stderr, r'"level":"(error|warn)"')
        for q in queries:
            self.assertEqual(series(text, "sql_exporter_last_scrape_failed", query=q["name"]), [0], q["name"])
            for column in q["values"]:
                self.assertTrue(series(text, f"sql_{q['name']}", col=column, user=ROLE),
                                f"sql_{q['name']}{{col=\"{column}\"}} is not served")
        self.assertEqual(series(text, "sql_motofinai_conflicts", col="conflicts", table_name=LOANS), [1])
        self.assertEqual(series(text, "sql_motofinai_versioned_table", col="observe", table_name="inventory_motor"),
                         [1])
        self.assertEqual(series(text, "sql_motofinai_recent_conflicts", col="entries", table_name=LOANS,
                                mode="observe", kind="version_not_stated"), [1])
        self.assertEqual(series(text, "sql_motofinai_statistics", col="enabled", database=database()["NAME"]), [1])
