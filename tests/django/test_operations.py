"""Migration operations and system checks, against the real server."""
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection, connections, transaction
from django.db.migrations.loader import MigrationLoader

from motofinai_consistency import checks
from motofinai_consistency.operations import (DisableVersioning, EnableVersioning, EnforceConsistency,
                                              ExtensionUnavailable, ensure_extension)
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


@pytest.fixture
def restore_versioning():
    yield
    for table in TABLES:
        sql("SELECT motofinai.enable_versioning(%s)", [table])
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
