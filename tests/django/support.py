"""Helpers shared by the tests: SQL one-liners, fresh data, a second session."""
import threading
import time
from contextlib import contextmanager

from django.db import connection, connections, transaction

from motofinai_consistency import db


def sql(query, params=None):
    """Run a statement on this thread's connection; return its rows (or None)."""
    with connection.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else None


def value(query, params=None):
    return sql(query, params)[0][0]


def fresh_data():
    """The regress tests' dataset: 200 generated loans (tests/generator/generate.sql).
    Loans by id % 20: 1 pending, 2-3 approved, 4-13 active, 14-19 completed, 20 pending."""
    sql("SELECT motofinai.enforce_consistency(false)")
    for table in ("loans_loanapplication", "loans_paymentschedule", "payments_payment", "inventory_motor"):
        sql("SELECT motofinai.enable_versioning(%s)", [table])  # back to non-strict
    sql("SELECT motofinai_gen.generate(200)")


class OtherSession:
    """Runs fn on a thread, hence on a database connection of its own."""

    def __init__(self, fn, *args):
        self._outcome = {}
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args):
        try:
            self._outcome["result"] = fn(*args)
        except BaseException as exc:  # handed to the test's thread by result()
            self._outcome["error"] = exc
        finally:
            connections.close_all()

    def result(self, timeout=30):
        """fn's return value; fn's exception is raised here."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError("the other session did not finish")
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["result"]


def in_other_session(fn, *args):
    return OtherSession(fn, *args).result()


def wait_for_lock_waiter(timeout=10):
    """Wait until another session waits for a lock this session holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value("SELECT count(*) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"):
            return
        time.sleep(0.02)
    raise AssertionError("no session started waiting for a lock")


def sqlstate(exc):
    """The SQLSTATE of a Django database error, with either driver."""
    return db.sqlstate(exc)


def create_role(name, *grants):
    """A NOLOGIN role (cluster-wide, so created if missing) with grants in this database."""
    sql(f"DO $$ BEGIN CREATE ROLE {name}; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    for grant in grants:
        sql(grant.format(role=name))


def drop_role(name):
    sql(f"DROP OWNED BY {name}")
    sql(f"DROP ROLE {name}")


@contextmanager
def as_role(name):
    """A transaction run with the privileges of role `name`."""
    with transaction.atomic():
        sql(f"SET LOCAL ROLE {name}")
        yield


def sql_get_for_update(model, pk, expected_version=None, nowait=False):
    """The extension's motofinai.get_for_update through Django's cursor: the row as a dict."""
    return db.from_jsonb(value("SELECT motofinai.get_for_update(%s::regclass, %s, expected_version => %s, "
                               "nowait => %s)", [model._meta.db_table, pk, expected_version, nowait]))
