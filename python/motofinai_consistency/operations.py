"""Migration operations for the extension's database side.

    operations = [
        EnableVersioning("loanapplication"),                 # after the AddFields makemigrations wrote
        EnableVersioning("payment", strict=True),
        EnableVersioning("motor", mode="observe"),           # count and log stale writes, reject none
        SetVersioningMode("motor", "enforce"),               # later: reject them
        EnforceConsistency(),
    ]

Each creates the extension first if the database lacks it (a clear error
when the role may not), is idempotent (the extension's functions are) and
reversible. They change no model's fields: the columns come from
``VersionedModel``'s fields and their ``AddField``. The migration state
remembers each versioned model's mode (a private option, which Django
ignores when it renders models and ``makemigrations`` never compares), so
that ``SetVersioningMode`` knows, backwards, the mode to go back to.
"""
from django.db import DatabaseError, router
from django.db.migrations.operations.base import Operation

EXTENSION = "motofinai_consistency"
PROTOCOLS = ("expected", "increment")
MODES = ("enforce", "observe")
DEFAULT_MODE = "enforce"  # enable_versioning's default: what a table versioned without a mode has
# The model state's option holding a versioned model's mode. Private (a
# leading underscore): Options.contribute_to_class skips such Meta
# attributes, and the autodetector compares only AlterModelOptions' keys.
MODE_OPTION = "_motofinai_versioning_mode"


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


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    return mode


def _model_state(state, app_label, model_name):
    return state.models.get((app_label, model_name.lower()))


def recorded_mode(state, app_label, model_name):
    """The versioning mode the migrations so far gave a model (None: none did)."""
    model_state = _model_state(state, app_label, model_name)
    return None if model_state is None else model_state.options.get(MODE_OPTION)


def _record_mode(state, app_label, model_name, mode):
    model_state = _model_state(state, app_label, model_name)
    if model_state is not None:  # a fresh dict: clones of the state keep theirs
        options = {k: v for k, v in model_state.options.items() if k != MODE_OPTION}
        if mode is not None:
            options[MODE_OPTION] = mode
        model_state.options = options


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

    def __init__(self, model_name, protocol="expected", strict=False, create_index=True, mode=DEFAULT_MODE):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
        self.model_name, self.protocol, self.strict, self.create_index = model_name, protocol, strict, create_index
        self.mode = _check_mode(mode)

    def deconstruct(self):
        kwargs = {}
        for name, default in (("protocol", "expected"), ("strict", False), ("create_index", True),
                              ("mode", DEFAULT_MODE)):
            if getattr(self, name) != default:
                kwargs[name] = getattr(self, name)
        return self.__class__.__qualname__, [self.model_name], kwargs

    def _options(self):
        options = [o for o, on in (("strict", self.strict), (self.mode, self.mode != DEFAULT_MODE)) if on]
        return f" ({', '.join(options)})" if options else ""

    def describe(self):
        return f"Enable versioning on {self.model_name}" + self._options()

    def state_forwards(self, app_label, state):
        _record_mode(state, app_label, self.model_name, self.mode)

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
        sql = ("SELECT motofinai.enable_versioning(%s::regclass, version_column => %s, modified_column => %s, "
               "protocol => %s, strict => %s, create_index => %s")
        params = [table, version, modified, self.protocol, self.strict, self.create_index]
        if self.mode != DEFAULT_MODE:
            # Named only when it is not the default, which enable_versioning
            # applies without it (so an extension without modes still works).
            sql += ", mode => %s"
            params.append(self.mode)
        self._run(app_label, schema_editor, sql + ")", params, apps, self.model_name)

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

    def state_forwards(self, app_label, state):
        _record_mode(state, app_label, self.model_name, None)

    @property
    def migration_name_fragment(self):
        return f"disable_versioning_{self.model_name.lower()}"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self.disable(app_label, schema_editor, from_state.apps)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self.enable(app_label, schema_editor, to_state.apps)


class SetVersioningMode(_ExtensionOperation):
    """``motofinai.set_versioning_mode`` on a versioned model's table: "observe"
    (stale and blind writes counted and logged, let through) or "enforce"
    (rejected). Its other options stay. Backwards, the mode the table had
    before: the one the migrations before this gave it (its
    ``EnableVersioning``'s, or an earlier ``SetVersioningMode``'s), else
    "enforce", the default of a table versioned without one."""

    def __init__(self, model_name, mode):
        self.model_name, self.mode = model_name, _check_mode(mode)

    def deconstruct(self):
        return self.__class__.__qualname__, [self.model_name, self.mode], {}

    def describe(self):
        return f"Set the versioning mode of {self.model_name} to {self.mode}"

    @property
    def migration_name_fragment(self):
        return f"{self.mode}_versioning_{self.model_name.lower()}"

    def state_forwards(self, app_label, state):
        _record_mode(state, app_label, self.model_name, self.mode)

    def set(self, app_label, schema_editor, apps, mode):
        table = schema_table(apps.get_model(app_label, self.model_name)._meta.db_table)
        self._run(app_label, schema_editor, "SELECT motofinai.set_versioning_mode(%s::regclass, %s)", [table, mode],
                  apps, self.model_name)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self.set(app_label, schema_editor, to_state.apps, self.mode)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        before = recorded_mode(to_state, app_label, self.model_name) or DEFAULT_MODE
        self.set(app_label, schema_editor, from_state.apps, before)


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
