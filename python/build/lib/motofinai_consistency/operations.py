"""Migration operations for the extension's database side.

    operations = [
        EnableVersioning("loanapplication"),                 # after the AddFields makemigrations wrote
        EnableVersioning("payment", strict=True),
        EnforceConsistency(),
    ]

Each creates the extension first if the database lacks it (a clear error
when the role may not), is idempotent (the extension's functions are) and
reversible. They change no model state: the columns come from
``VersionedModel``'s fields and their ``AddField``.
"""
from django.db import DatabaseError, router
from django.db.migrations.operations.base import Operation

EXTENSION = "motofinai_consistency"
PROTOCOLS = ("expected", "increment")


class ExtensionUnavailable(DatabaseError):
    """The database lacks the extension and this role could not create it."""


def ensure_extension(schema_editor):
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = %s", [EXTENSION])
        if cur.fetchone():
            return
        cur.execute("SELECT current_user, current_database()")
        role, database = cur.fetchone()
        try:
            cur.execute(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
        except DatabaseError as exc:
            raise ExtensionUnavailable(
                f"database {database!r} does not have the {EXTENSION} extension and role {role!r} "
                f"could not create it ({str(exc).strip()}). Ask a superuser to run "
                f"'CREATE EXTENSION {EXTENSION};' in {database!r} (the server needs the extension "
                f"installed and in shared_preload_libraries), then migrate again.") from exc


class _ExtensionOperation(Operation):
    reduces_to_sql = False
    reversible = True

    def state_forwards(self, app_label, state):
        pass  # the database side only

    def _run(self, app_label, schema_editor, sql, params, model_state_apps=None, model_name=None):
        if schema_editor.connection.vendor != "postgresql":
            return
        if model_name is not None:
            model = model_state_apps.get_model(app_label, model_name)
            if not router.allow_migrate_model(schema_editor.connection.alias, model):
                return
        ensure_extension(schema_editor)
        schema_editor.execute(sql, params)


class EnableVersioning(_ExtensionOperation):
    """``motofinai.enable_versioning`` on a model's table; backwards, ``disable_versioning``."""

    def __init__(self, model_name, protocol="expected", strict=False, create_index=True):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
        self.model_name, self.protocol, self.strict, self.create_index = model_name, protocol, strict, create_index

    def deconstruct(self):
        kwargs = {}
        for name, default in (("protocol", "expected"), ("strict", False), ("create_index", True)):
            if getattr(self, name) != default:
                kwargs[name] = getattr(self, name)
        return self.__class__.__qualname__, [self.model_name], kwargs

    def describe(self):
        return f"Enable versioning on {self.model_name}" + (" (strict)" if self.strict else "")

    @property
    def migration_name_fragment(self):
        return f"enable_versioning_{self.model_name.lower()}"

    def _table_and_columns(self, apps, app_label):
        meta = apps.get_model(app_label, self.model_name)._meta
        columns = {f.name: f.column for f in meta.concrete_fields}
        return (schema_table(meta.db_table), columns.get("version", "version"),
                columns.get("last_modified_at", "last_modified_at"))

    def enable(self, app_label, schema_editor, apps):
        table, version, modified = self._table_and_columns(apps, app_label)
        self._run(app_label, schema_editor,
                  "SELECT motofinai.enable_versioning(%s::regclass, version_column => %s, modified_column => %s, "
                  "protocol => %s, strict => %s, create_index => %s)",
                  [table, version, modified, self.protocol, self.strict, self.create_index], apps, self.model_name)

    def disable(self, app_label, schema_editor, apps):
        table = self._table_and_columns(apps, app_label)[0]
        # Only if registered: disabling twice (or an unversioned table) is a no-op.
        self._run(app_label, schema_editor,
                  "SELECT motofinai.disable_versioning(tbl) FROM motofinai.versioning_config "
                  "WHERE tbl = to_regclass(%s)", [table], apps, self.model_name)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self.enable(app_label, schema_editor, to_state.apps)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self.disable(app_label, schema_editor, from_state.apps)


class DisableVersioning(EnableVersioning):
    """The reverse: trigger removed (columns and data stay); backwards, enabled
    again with the options given here."""

    def describe(self):
        return f"Disable versioning on {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"disable_versioning_{self.model_name.lower()}"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self.disable(app_label, schema_editor, from_state.apps)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self.enable(app_label, schema_editor, to_state.apps)


class EnforceConsistency(_ExtensionOperation):
    """``motofinai.enforce_consistency(enabled)``: the loan check at COMMIT; reversed, the opposite."""

    def __init__(self, enabled=True):
        self.enabled = bool(enabled)

    def deconstruct(self):
        return self.__class__.__qualname__, [], {} if self.enabled else {"enabled": False}

    def describe(self):
        return "Enforce consistency at COMMIT" if self.enabled else "Stop enforcing consistency at COMMIT"

    @property
    def migration_name_fragment(self):
        return "enforce_consistency" if self.enabled else "stop_enforcing_consistency"

    def _set(self, schema_editor, enabled):
        self._run(None, schema_editor, "SELECT motofinai.enforce_consistency(%s)", [enabled])

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._set(schema_editor, self.enabled)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._set(schema_editor, not self.enabled)


def schema_table(db_table):
    """A db_table as regclass input text, quoted so case and odd characters survive."""
    return '"' + db_table.replace('"', '""') + '"'
