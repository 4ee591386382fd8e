"""The database side: error translation (installed on every connection by
the app config) and the few cursor helpers the rest of the package uses.

Works with both drivers Django supports for PostgreSQL: psycopg 3 names a
server error's code ``sqlstate``, psycopg2 ``pgcode``; both have ``diag``.
"""
import json
import re
from decimal import Decimal

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from . import exceptions

VERSION_CHECK = "motofinai_version_check"      # constraint_name of the trigger's 40001 (and of MF001)
CONSISTENCY_CONSTRAINT = "motofinai_consistency"  # constraint_name of the COMMIT-time 23514
SERIALIZATION_FAILURE = "40001"
OBJECT_DELETED = "MF002"
BLIND_WRITE = "MF001"

# The trigger's and the helpers' DETAIL (src/versioning/mod.rs):
# "Key (id)=(42): expected version 3, current version 4, last modified at 2026-11-29 10:02:03.1+00."
_CONFLICT_DETAIL = re.compile(
    r"^Key \((?P<column>.+?)\)=\((?P<key>.*)\): expected version (?P<expected>-?\d+), "
    r"current version (?P<current>-?\d+), last modified at (?P<last_modified>.*?)\.?$")


def driver_error(exc):
    """The driver's exception behind a Django database error (or exc itself)."""
    return exc.__cause__ if exc.__cause__ is not None else exc


def sqlstate(exc):
    err = driver_error(exc)
    return getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)


def diagnostics(exc):
    """(constraint_name, table_name, message_primary, message_detail) of a server error."""
    diag = getattr(driver_error(exc), "diag", None)
    fields = ("constraint_name", "table_name", "message_primary", "message_detail")
    return tuple(getattr(diag, f, None) for f in fields)


def conflict_from(exc):
    """The configured conflict exception for a server error of ours, else None."""
    state = sqlstate(exc)
    if state not in (SERIALIZATION_FAILURE, OBJECT_DELETED):
        return None
    constraint, table, message, detail = diagnostics(exc)
    if state == OBJECT_DELETED:
        key = re.search(r"\)=\((.*)\) was not found", detail or "")
        return exceptions.object_deleted(table, key.group(1) if key else None, message)
    if constraint != VERSION_CHECK:
        return None  # a SERIALIZABLE transaction's own failure: not a version conflict
    facts = _CONFLICT_DETAIL.match(detail or "")
    if not facts:
        return exceptions.version_mismatch(table, None, None, None, None, message)
    return exceptions.version_mismatch(table, facts["key"], int(facts["expected"]), int(facts["current"]),
                                       facts["last_modified"], message)


def translate_errors(execute, sql, params, many, context):
    """Execute wrapper: the extension's conflict errors become the configured exception."""
    try:
        return execute(sql, params, many, context)
    except DatabaseError as exc:
        conflict = conflict_from(exc)
        if conflict is None:
            raise
        raise conflict from exc


def install(connection, **kwargs):
    """connection_created receiver. First in the list, so a wrapper pushed by
    ``connection.execute_wrapper()`` and popped later never pops ours, and
    ours is the outermost: other wrappers still see Django's own error."""
    if connection.vendor == "postgresql" and translate_errors not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, translate_errors)


def from_jsonb(value):
    """jsonb as Python: Django's backends hand it to cursors as text; money stays Decimal."""
    if value is None or not isinstance(value, (str, bytes)):
        return value
    return json.loads(value, parse_float=Decimal)


def fetch_value(sql, params=None, using=DEFAULT_DB_ALIAS):
    with connections[using].cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def fetch_dicts(sql, params=None, using=DEFAULT_DB_ALIAS, json_columns=("details", "changes")):
    """Rows as dicts by column name (so new columns never shift old ones)."""
    with connections[using].cursor() as cur:
        cur.execute(sql, params)
        names = [c[0] for c in cur.description]
        rows = [dict(zip(names, row)) for row in cur.fetchall()]
    for row in rows:
        for column in json_columns:
            if column in row:
                row[column] = from_jsonb(row[column])
    return rows


def quoted_table(model):
    """A model's table as a regclass literal's text: quoted, so case and odd names survive."""
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(model._meta.db_table)


def identifier(value, what):
    """An id argument: an integer (or its digits), or a model instance (its pk)."""
    value = getattr(value, "pk", value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise TypeError(f"{what} must be an integer id or a model instance, not {value!r}")
