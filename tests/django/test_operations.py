"""Migration operations and system checks, against the real server."""
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection, connections, migrations, transaction
from django.db.migrations.loader import MigrationLoader

from motofinai_consistency import checks
from motofinai_consistency.operations import (DisableVersioning, EnableVersioning, EnforceConsistency,
                                              ExtensionUnavailable, SetVersioningMode, ensure_extension,
                                              recorded_mode)
from support import create_role, drop_role, sql, value

TABLES = ["inventory_motor", "loans_loanapplication", "loans_paymentschedule", "payments_payment"]


def versioned():
    return sql("SELECT table_name::text, strict, trigger_enabled FROM motofinai.versioned_tables ORDER BY 1")


def apply(operation, backwards=False, using="default"):
    state = MigrationLoader(connections[using]).project_state()
    with connections[using].schema_editor() as editor:
        if backwards:
            operation.database_backwards("finance", editor, state, state)
        else:
            operation.database_forwards("finance", editor, state, state)


def modes():
    return dict(sql("SELECT table_name::text, mode FROM motofinai.versioned_tables"))


class Migration:
    """Operations run as one migration of finance after the real ones, the
    way migrate runs them (state_forwards, then the database, one by one)."""

    def __init__(self, *operations, before=None):
        self.migration = migrations.Migration("test", "finance")
        self.migration.operations = list(operations)
        self.before = before or MigrationLoader(connection).project_state()

    def apply(self):
        with connection.schema_editor() as editor:
            return self.migration.apply(self.before.clone(), editor)

    def unapply(self):
        with connection.schema_editor() as editor:
            self.migration.unapply(self.before.clone(), editor)


@pytest.fixture
def restore_versioning():
    yield
    for table in TABLES:
        sql("SELECT motofinai.enable_versioning(%s)", [table])  # enforcing, not strict
    sql("ALTER TABLE loans_loanapplication ENABLE TRIGGER motofinai_versioning")
    sql("SELECT motofinai.enforce_consistency(false)")


@pytest.mark.smoke
def test_enable_versioning_is_idempotent_reversible_and_takes_options(restore_versioning):
    assert versioned() == [(t, False, True) for t in TABLES]
    operation = EnableVersioning("loanapplication", strict=True)
    apply(operation)
    apply(operation)
    assert ("loans_loanapplication", True, True) in versioned()
    apply(operation, backwards=True)
    apply(operation, backwards=True)  # disabling twice is a no-op
    assert [t for t, *_ in versioned()] == [t for t in TABLES if t != "loans_loanapplication"]
    apply(DisableVersioning("loanapplication"), backwards=True)  # the reverse of disabling: enabled again
    assert ("loans_loanapplication", False, True) in versioned()
    assert value("SELECT count(*) FROM information_schema.columns WHERE table_name = 'loans_loanapplication' "
                 "AND column_name IN ('version', 'last_modified_at')") == 2


@pytest.mark.smoke
def test_enable_versioning_takes_a_mode(restore_versioning):
    apply(EnableVersioning("motor", mode="observe"))
    assert modes()["inventory_motor"] == "observe"
    apply(EnableVersioning("motor"))  # the default mode again
    assert modes()["inventory_motor"] == "enforce"
    apply(DisableVersioning("motor", strict=True, mode="observe"), backwards=True)  # enabled with those options
    assert ("inventory_motor", True, True) in versioned() and modes()["inventory_motor"] == "observe"


@pytest.mark.smoke
def test_set_versioning_mode_and_its_reverse_the_mode_before(restore_versioning):
    # 0002 enabled versioning on motor without a mode: enforcing
    observe = Migration(SetVersioningMode("motor", "observe"))
    after = observe.apply()
    assert modes() == {**{t: "enforce" for t in TABLES}, "inventory_motor": "observe"}
    assert ("inventory_motor", False, True) in versioned()  # its other options stay
    assert recorded_mode(after, "finance", "motor") == "observe"
    enforce = Migration(SetVersioningMode("motor", "enforce"), before=after)
    enforce.apply()
    assert modes()["inventory_motor"] == "enforce"
    enforce.unapply()  # back to what the migration before it set
    assert modes()["inventory_motor"] == "observe"
    observe.unapply()
    assert modes()["inventory_motor"] == "enforce"


def test_set_versioning_mode_reverses_to_the_mode_enable_versioning_gave(restore_versioning):
    enable = Migration(EnableVersioning("motor", strict=True, mode="observe"))
    after = enable.apply()
    enforce = Migration(SetVersioningMode("motor", "enforce"), before=after)
    enforce.apply()
    assert modes()["inventory_motor"] == "enforce"
    enforce.unapply()
    assert modes()["inventory_motor"] == "observe"
    assert ("inventory_motor", True, True) in versioned()
    # in one migration the same: each operation reversed against the state before it
    both = Migration(EnableVersioning("motor", mode="observe"), SetVersioningMode("motor", "enforce"),
                     SetVersioningMode("motor", "observe"))
    both.apply()
    assert modes()["inventory_motor"] == "observe"
    both.unapply()  # ... then the EnableVersioning's reverse: unversioned
    assert "inventory_motor" not in modes()


def test_the_mode_in_the_migration_state_is_invisible_to_django():
    state = MigrationLoader(connection).project_state()
    assert recorded_mode(state, "finance", "motor") == "enforce"  # 0002's EnableVersioning
    assert recorded_mode(state, "finance", "financingterm") is None
    after = Migration(SetVersioningMode("motor", "observe"), DisableVersioning("payment")).migration.mutate_state(
        state, preserve=True)
    assert recorded_mode(after, "finance", "motor") == "observe"
    assert recorded_mode(after, "finance", "payment") is None
    assert recorded_mode(state, "finance", "motor") == "enforce"  # the state before is not changed
    assert after.apps.get_model("finance", "motor")._meta.db_table == "inventory_motor"  # renders
    call_command("makemigrations", "finance", "--check", "--dry-run", verbosity=0)  # no change detected


def test_the_migration_reverses_and_reapplies():
    call_command("migrate", "finance", "0001", verbosity=0)
    assert versioned() == []
    call_command("migrate", "finance", verbosity=0)
    assert versioned() == [(t, False, True) for t in TABLES]


def test_enforce_consistency_operation(restore_versioning):
    triggers = "SELECT count(*) FROM pg_trigger WHERE tgname = 'motofinai_consistency'"
    apply(EnforceConsistency())
    apply(EnforceConsistency())
    assert value(triggers) == 3
    apply(EnforceConsistency(), backwards=True)
    assert value(triggers) == 0


def test_operations_deconstruct_and_describe():
    assert EnableVersioning("loan").deconstruct() == ("EnableVersioning", ["loan"], {})
    assert EnableVersioning("loan", strict=True).deconstruct()[2] == {"strict": True}
    assert EnforceConsistency(False).deconstruct() == ("EnforceConsistency", [], {"enabled": False})
    assert EnableVersioning("loan").describe() == "Enable versioning on loan"
    with pytest.raises(ValueError, match="protocol must be one of"):
        EnableVersioning("loan", protocol="optimistic")
    assert EnableVersioning("loan", mode="observe").deconstruct()[2] == {"mode": "observe"}
    assert EnableVersioning("loan", mode="enforce").deconstruct()[2] == {}
    assert EnableVersioning("loan", strict=True, mode="observe").describe() == \
        "Enable versioning on loan (strict, observe)"
    assert SetVersioningMode("loan", "observe").deconstruct() == ("SetVersioningMode", ["loan", "observe"], {})
    assert SetVersioningMode("loan", "enforce").describe() == "Set the versioning mode of loan to enforce"
    assert SetVersioningMode("Loan", "observe").migration_name_fragment == "observe_versioning_loan"
    for bad in (lambda: EnableVersioning("loan", mode="watch"), lambda: SetVersioningMode("loan", None)):
        with pytest.raises(ValueError, match="mode must be one of"):
            bad()


@pytest.mark.smoke
def test_create_extension_is_handled_or_a_clear_error():
    noext = connections["noext"]
    exists = "SELECT count(*) FROM pg_extension WHERE extname = 'motofinai_consistency'"
    with transaction.atomic(using="noext"):
        with noext.schema_editor(atomic=False) as editor:
            ensure_extension(editor)
            ensure_extension(editor)
        with noext.cursor() as cur:
            cur.execute(exists)
            assert cur.fetchone()[0] == 1
        transaction.set_rollback(True, using="noext")
    create_role("motofinai_no_create")
    try:
        with transaction.atomic(using="noext"):
            with noext.cursor() as cur:
                cur.execute("SET LOCAL ROLE motofinai_no_create")
            with pytest.raises(ExtensionUnavailable, match=r"role 'motofinai_no_create' could not create it .*"
                                                           r"Ask a superuser to run 'CREATE EXTENSION"):
                with noext.schema_editor(atomic=False) as editor:
                    ensure_extension(editor)
            transaction.set_rollback(True, using="noext")
    finally:
        drop_role("motofinai_no_create")


# --- system checks --------------------------------------------------------------

def ids(databases=("default",)):
    return [m.id for m in checks.check_database(databases=list(databases))]


@pytest.mark.smoke
def test_checks_pass_on_a_migrated_database():
    assert ids() == []
    call_command("check", "--database", "default", verbosity=0)


def test_a_disabled_trigger_and_an_unversioned_table_are_reported(restore_versioning):
    sql("ALTER TABLE loans_loanapplication DISABLE TRIGGER motofinai_versioning")
    sql("SELECT motofinai.disable_versioning('payments_payment')")
    problems = checks.check_database(databases=["default"])
    assert sorted(m.id for m in problems) == ["motofinai_consistency.E003", "motofinai_consistency.E004"]
    by_id = {m.id: m for m in problems}
    assert "finance.Payment is a VersionedModel but its table payments_payment is not versioned" in by_id[
        "motofinai_consistency.E003"].msg
    assert 'EnableVersioning("payment")' in by_id["motofinai_consistency.E003"].hint
    assert "ENABLE TRIGGER motofinai_versioning" in by_id["motofinai_consistency.E004"].hint
    with pytest.raises(SystemCheckError, match="E004"):
        call_command("check", "--database", "default", verbosity=0)


def test_a_table_in_observe_mode_is_reported_as_info(restore_versioning):
    sql("SELECT motofinai.set_versioning_mode('inventory_motor', 'observe')")
    (message,) = checks.check_database(databases=["default"])
    assert message.id == "motofinai_consistency.I001" and message.level == checks.checks.INFO
    assert "inventory_motor (finance.Motor) is in observe mode" in message.msg
    assert 'SetVersioningMode("motor", "enforce")' in message.hint
    call_command("check", "--database", "default", verbosity=0)  # not a failure


def test_a_missing_or_old_extension_is_reported(monkeypatch):
    monkeypatch.setattr(checks, "_pending_migrations", lambda connection: False)
    assert ids(["noext"]) == ["motofinai_consistency.E001"]
    monkeypatch.setattr(checks, "REQUIRED_EXTENSION_VERSION", "99.0")
    assert ids() == ["motofinai_consistency.E002"]


def test_while_migrations_are_pending_missing_pieces_are_not_errors():
    # the noext database has never been migrated: its migrations would create them
    assert ids(["noext"]) == []


def test_an_unreachable_database_is_a_warning():
    assert ids(["unreachable"]) == ["motofinai_consistency.W001"]
