"""System checks. The database ones run with ``manage.py check --database default``
(and before ``migrate``), as Django runs every database check.

    motofinai_consistency.E001  the extension is not installed in the database
    motofinai_consistency.E002  the extension is older than this package needs
    motofinai_consistency.E003  a VersionedModel's table is not versioned
    motofinai_consistency.E004  a versioned table's trigger is missing or disabled
    motofinai_consistency.E005  the EXCEPTION setting names no exception class
    motofinai_consistency.W001  the database could not be asked
    motofinai_consistency.I001  a versioned table is in observe mode (stale saves logged, not rejected)

While migrations are pending, E001, E003 and E004 are not reported: the
migrations may be what creates the extension and versions the tables (and
``migrate`` itself runs these checks first).
"""
from django.apps import apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connections

from . import REQUIRED_EXTENSION_VERSION
from .exceptions import exception_class

ID = "motofinai_consistency."


def version_tuple(text):
    return tuple(int(part) for part in "".join(c if c.isdigit() else " " for c in text).split())


@checks.register()
def check_exception_setting(app_configs=None, **kwargs):
    try:
        exception_class()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Name an exception class by its dotted path.", id=ID + "E005")]
    return []


def _pending_migrations(connection):
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _versioned_models():
    from .models import VersionedModel

    return [m for m in apps.get_models() if issubclass(m, VersionedModel) and not m._meta.proxy]


@checks.register(checks.Tags.database)
def check_database(app_configs=None, databases=None, **kwargs):
    problems = []
    for alias in databases or []:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        try:
            problems += _check_connection(alias, connection)
        except OperationalError as exc:  # unreachable; anything else is a real error
            problems.append(checks.Warning(f"database {alias!r} could not be checked: {exc}".strip(),
                                           hint="Is the server reachable with these settings?", id=ID + "W001"))
    return problems


def _check_connection(alias, connection):
    with connection.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'motofinai_consistency'")
        row = cur.fetchone()
    pending = _pending_migrations(connection)
    if row is None:
        if pending:
            return []
        return [checks.Error(
            f"database {alias!r} ({connection.settings_dict['NAME']}) does not have the motofinai_consistency "
            "extension", hint="Add an EnableVersioning operation to a migration (it creates the extension), "
            "or have a superuser run CREATE EXTENSION motofinai_consistency.", id=ID + "E001")]
    if version_tuple(row[0]) < version_tuple(REQUIRED_EXTENSION_VERSION):
        return [checks.Error(
            f"database {alias!r} has motofinai_consistency {row[0]}; this package needs "
            f"{REQUIRED_EXTENSION_VERSION} or later", hint="Install the newer extension on the server and run "
            "ALTER EXTENSION motofinai_consistency UPDATE.", id=ID + "E002")]
    if pending:
        return []
    with connection.cursor() as cur:
        # mode through to_jsonb: NULL from an extension without modes
        cur.execute("SELECT table_name::oid, trigger_present, trigger_enabled, to_jsonb(v) ->> 'mode' "
                    "FROM motofinai.versioned_tables v")
        rows = cur.fetchall()
        versioned = {oid: (present, enabled) for oid, present, enabled, _ in rows}
        modes = {oid: mode for oid, _, _, mode in rows}
        problems = []
        for model in _versioned_models():
            table = model._meta.db_table
            cur.execute("SELECT to_regclass(%s)::oid", ['"' + table.replace('"', '""') + '"'])
            oid = cur.fetchone()[0]
            if oid not in versioned:
                problems.append(checks.Error(
                    f"{model._meta.label} is a VersionedModel but its table {table} is not versioned: "
                    "nothing rejects stale saves", obj=model,
                    hint=f'Add EnableVersioning("{model._meta.model_name}") to a migration of '
                         f"{model._meta.app_label}.", id=ID + "E003"))
            elif versioned[oid] != (True, True):
                problems.append(checks.Error(
                    f"the versioning trigger of {table} ({model._meta.label}) is "
                    f"{'disabled' if versioned[oid][0] else 'missing'}: nothing rejects stale saves", obj=model,
                    hint=f"Run ALTER TABLE {table} ENABLE TRIGGER motofinai_versioning, or "
                         f"SELECT motofinai.enable_versioning('{table}') to recreate it.", id=ID + "E004"))
            elif modes[oid] == "observe":
                problems.append(checks.Info(
                    f"{table} ({model._meta.label}) is in observe mode: stale saves are counted and logged "
                    "(motofinai.recent_conflicts), not rejected", obj=model,
                    hint=f'Once the conflicts are understood, SetVersioningMode("{model._meta.model_name}", '
                         f'"enforce") in a migration of {model._meta.app_label}.', id=ID + "I001"))
    return problems
