"""contrib/postgres_exporter/queries.yaml: every query runs against the server
and returns exactly the columns its metrics declare. With POSTGRES_EXPORTER set
to a postgres_exporter binary, the real exporter also serves the metrics."""
import os
import re
import socket
import subprocess
import time
import unittest
import urllib.request
from decimal import Decimal
from pathlib import Path

import yaml
from django.conf import settings
from django.db import connection

from finance.models import LoanApplication
from motofinai_consistency.concurrency import ConcurrencyException
from support import as_role, create_role, drop_role, fresh_data, sql

QUERIES = Path(__file__).resolve().parents[2] / "contrib" / "postgres_exporter" / "queries.yaml"
USAGES = {"LABEL", "COUNTER", "GAUGE", "DISCARD", "MAPPEDMETRIC", "DURATION"}
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def load():
    with open(QUERIES) as f:
        return yaml.safe_load(f)


def declared(spec):
    """[(column, usage)] in the order of the metrics list."""
    return [(column, m["usage"]) for entry in spec["metrics"] for column, m in entry.items()]


def run(query):
    with connection.cursor() as cur:
        cur.execute(query)
        return [c.name for c in cur.description], cur.fetchall()


def make_activity():
    """Something for every query to report: 3 saves and 1 conflict on loan 5,
    and a recorded quick check over data with injected defects."""
    fresh_data()
    sql("SELECT motofinai_gen.inject(1)")
    sql("SELECT motofinai.conflict_stats_reset()")
    stale = LoanApplication.objects.get(pk=5)
    loan = LoanApplication.objects.get(pk=5)
    for _ in range(3):
        loan.save()
    try:
        stale.save()
    except ConcurrencyException:
        pass
    assert sql("SELECT 1 FROM motofinai.conflict_stats WHERE table_name = 'loans_loanapplication'::regclass"), (
        "conflict statistics are not collected: is motofinai_consistency preloaded? Are the 64 slots of the "
        "cluster used up (a dropped database keeps its slots until restart)?")
    return sql("SELECT errors, warnings FROM motofinai.run_check('quick')")[0]


class QueriesFileTests(unittest.TestCase):
    ROLE = "motofinai_django_metrics"  # the grant the queries file asks for, nothing more

    @classmethod
    def setUpClass(cls):
        cls.spec = load()
        cls.errors, cls.warnings = make_activity()
        create_role(cls.ROLE, "GRANT USAGE ON SCHEMA motofinai TO {role}",
                    "GRANT SELECT ON loans_loanapplication TO {role}")

    @classmethod
    def tearDownClass(cls):
        drop_role(cls.ROLE)

    def test_file_format(self):
        self.assertTrue(self.spec)
        for namespace, spec in self.spec.items():
            self.assertLessEqual(set(spec), {"query", "metrics", "master", "cache_seconds"}, namespace)
            self.assertIsInstance(spec["query"], str)
            for entry in spec["metrics"]:
                self.assertEqual(len(entry), 1, namespace)
                (column, metric), = entry.items()
                self.assertIn(metric["usage"], USAGES, f"{namespace}.{column}")
                self.assertTrue(metric["description"].strip(), f"{namespace}.{column}")
                self.assertRegex(f"{namespace}_{column}", METRIC_NAME)

    def test_each_query_returns_exactly_its_declared_columns(self):
        for namespace, spec in self.spec.items():
            with self.subTest(namespace), as_role(self.ROLE):
                columns, rows = run(spec["query"])
                self.assertEqual(columns, [c for c, _ in declared(spec)])
                self.assertTrue(rows, "no rows")
                for row in rows:
                    for (column, usage), cell in zip(declared(spec), row):
                        kind = str if usage == "LABEL" else (int, float, Decimal)
                        self.assertIsInstance(cell, kind, f"{column} = {cell!r}")

    def rows(self, namespace):
        columns, rows = run(self.spec[namespace]["query"])
        return [dict(zip(columns, row)) for row in rows]

    def test_values(self):
        loans = [r for r in self.rows("motofinai_conflicts") if r["table_name"] == "loans_loanapplication"]
        self.assertEqual([(r["conflicts"], r["strict_rejections"]) for r in loans], [(1, 0)])
        self.assertGreater(loans[0]["last_conflict_timestamp_seconds"], time.time() - 600)
        hot = {(r["table_name"], r["row_id"]): r["modifications"] for r in self.rows("motofinai_hot_rows")}
        self.assertEqual(hot[("loans_loanapplication", "5")], 3)
        quick = [r for r in self.rows("motofinai_last_check") if r["scope"] == "quick"]
        self.assertEqual([(r["errors"], r["warnings"]) for r in quick], [(self.errors, self.warnings)])
        findings = [r for r in self.rows("motofinai_last_check_findings") if r["scope"] == "quick"]
        self.assertEqual(sum(r["findings"] for r in findings), self.errors + self.warnings)
        self.assertEqual([r["enabled"] for r in self.rows("motofinai_statistics")], [1])


@unittest.skipUnless(os.environ.get("POSTGRES_EXPORTER"), "set POSTGRES_EXPORTER to a postgres_exporter binary")
class RealExporterTests(unittest.TestCase):
    def test_exporter_serves_every_declared_metric(self):
        make_activity()
        db = settings.DATABASES["default"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, DATA_SOURCE_NAME=f"host={db['HOST']} port={db['PORT']} user={db['USER']} "
                                                 f"dbname={db['NAME']} sslmode=disable")
        exporter = subprocess.Popen(
            [os.environ["POSTGRES_EXPORTER"], f"--web.listen-address=127.0.0.1:{port}", "--disable-default-metrics",
             "--disable-settings-metrics", f"--extend.query-path={QUERIES}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for _ in range(100):
                try:
                    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                self.fail("the exporter did not answer")
        finally:
            exporter.terminate()
            stderr = exporter.communicate(timeout=10)[1].decode()
        self.assertNotIn("level=error", stderr)
        self.assertRegex(text, r"(?m)^pg_exporter_last_scrape_error 0$")
        self.assertRegex(text, r"(?m)^pg_exporter_user_queries_load_error\{.*\} 0$")
        for namespace, spec in load().items():
            for column, usage in declared(spec):
                if usage != "LABEL":
                    self.assertRegex(text, rf"(?m)^{namespace}_{column}{{", f"{namespace}_{column}")
        self.assertRegex(text, r'(?m)^motofinai_conflicts_conflicts\{.*table_name="loans_loanapplication".*\} 1$')
