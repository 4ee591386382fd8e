"""Optimistic locking by the motofinai_consistency extension, seen from Django.

docs/django.md explains each piece; the tests in this directory prove them.
"""
import json
from decimal import Decimal

from django.db import OperationalError, connection, models
from django.db.models.functions import Now

VERSION_CHECK = "motofinai_version_check"


def from_jsonb(text):
    """Django's cursor hands jsonb over as text; money stays Decimal."""
    return json.loads(text, parse_float=Decimal)


class ConcurrencyException(Exception):
    """The row was changed by another transaction since it was read."""

    def __init__(self, message, table=None):
        super().__init__(message)
        self.table = table


def translate_version_conflict(execute, sql, params, many, context):
    """Execute wrapper: the extension's stale-version error becomes ConcurrencyException.

    Only SQLSTATE 40001 with constraint_name = motofinai_version_check; other
    serialization failures (SERIALIZABLE transactions) stay OperationalError.
    """
    try:
        return execute(sql, params, many, context)
    except OperationalError as exc:
        cause = exc.__cause__
        if getattr(cause, "sqlstate", None) == "40001" and cause.diag.constraint_name == VERSION_CHECK:
            raise ConcurrencyException(cause.diag.message_primary, table=cause.diag.table_name) from exc
        raise


class VersionedModel(models.Model):
    """Base of the models whose table is versioned with motofinai.enable_versioning.

    The database owns both columns: it fills them on INSERT (returned to Django
    by RETURNING) and the trigger bumps them on every UPDATE.
    """

    version = models.IntegerField(db_default=1)
    last_modified_at = models.DateTimeField(db_default=Now())

    class Meta:
        abstract = True

    def save(self, **kwargs):
        updating = not self._state.adding
        if updating and not kwargs.get("force_insert"):
            # A row deleted meanwhile raises DatabaseError instead of being re-inserted.
            kwargs.setdefault("force_update", True)
        super().save(**kwargs)
        if updating:
            fields = kwargs.get("update_fields")
            if fields is None or "version" in fields:
                # The UPDATE stated our version and the trigger accepted it,
                # so the row now holds exactly our version + 1.
                self.version += 1
            else:
                # A blind write: the row was at some version we never saw.
                self.refresh_from_db(fields=["version", "last_modified_at"])


def get_for_update(model, pk, expected_version=None, nowait=False):
    """motofinai.get_for_update: lock the row, check its version, return it as a dict."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT motofinai.get_for_update(%s::regclass, %s, expected_version => %s, nowait => %s)",
            [model._meta.db_table, pk, expected_version, nowait],
        )
        return from_jsonb(cur.fetchone()[0])


def check(family, entity_id=None):
    """Rows of motofinai.check_<family>_consistency(id), as dicts (details already parsed)."""
    assert family in ("loan", "payment", "inventory", "system", "quick")
    args, params = ("%s", [entity_id]) if entity_id is not None else ("", [])
    with connection.cursor() as cur:
        cur.execute(f"SELECT * FROM motofinai.check_{family}_consistency({args})", params)
        names = [c.name for c in cur.description]
        rows = [dict(zip(names, row)) for row in cur.fetchall()]
    for row in rows:
        row["details"] = from_jsonb(row["details"])
    return rows


def consistency_report(scope, entity_id=None):
    """motofinai.consistency_report: {"errors": [...], "warnings": [...]}."""
    with connection.cursor() as cur:
        cur.execute("SELECT motofinai.consistency_report(%s, %s)", [scope, entity_id])
        return from_jsonb(cur.fetchone()[0])
