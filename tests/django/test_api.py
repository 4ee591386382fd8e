"""Section 1 of the package: every name of the seed's concurrency module,
with the seed's examples (CONCURRENCY.md), on the Motofinai tables."""
import datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from finance.models import LoanApplication, Motor, Payment, PaymentSchedule
from motofinai.apps.core import exceptions as app_exceptions
from motofinai_consistency import concurrency
from motofinai_consistency.concurrency import *  # noqa: F403  (the drop-in, as the app imports it)
from motofinai_consistency.exceptions import ConcurrencyException as DefaultConcurrencyException
from support import OtherSession, fresh_data, in_other_session, sql, sqlstate, value, wait_for_lock_waiter

Loan = LoanApplication
LOAN_6_UNPAID = "Loan marked completed but not fully paid (paid: 4106.66, owed: 49279.96)"


@pytest.fixture(autouse=True)
def data():
    fresh_data()
    yield
    sql("SELECT motofinai.enforce_consistency(false)")


def stored(pk):
    return tuple(sql("SELECT status, notes, version FROM loans_loanapplication WHERE id = %s", [pk])[0])


def update_elsewhere(pk, **changes):
    """Another session saves loan pk (so ours is stale)."""
    def save():
        loan = Loan.objects.get(pk=pk)
        for name, val in changes.items():
            setattr(loan, name, val)
        loan.save()
        return loan.version
    return in_other_session(save)


# --- the exception ------------------------------------------------------------

@pytest.mark.smoke
def test_the_configured_exception_is_raised_with_code_and_details():
    assert concurrency.ConcurrencyException is app_exceptions.ConcurrencyException
    loan = Loan.objects.get(pk=5)
    version = update_elsewhere(5, notes="first writer")
    loan.notes = "second writer"
    with pytest.raises(ConcurrencyException) as caught:  # noqa: F405
        loan.save()
    exc = caught.value
    assert type(exc) is app_exceptions.ConcurrencyException
    assert exc.code == exc.error_code == "version_mismatch"
    assert exc.status_code == 409
    assert str(exc) == (f"loans_loanapplication row 5 was modified by another transaction "
                        f"(expected version {version - 1}, found {version})")
    detail = exc.details[0]
    assert {k: detail[k] for k in ("table", "key", "expected_version", "current_version")} == {
        "table": "loans_loanapplication", "key": "5", "expected_version": version - 1, "current_version": version}
    assert datetime.datetime.fromisoformat(detail["last_modified"]) == \
        value("SELECT last_modified_at FROM loans_loanapplication WHERE id = 5")
    assert exc.to_response_dict()["error"]["details"][0]["current_version"] == version  # the app's middleware
    assert sqlstate(exc.__cause__) == "40001"
    assert stored(5)[1:] == ("first writer", version)


def test_without_the_setting_the_package_exception_is_raised():
    with override_settings(MOTOFINAI_CONSISTENCY={}):
        assert concurrency.ConcurrencyException is DefaultConcurrencyException
        with pytest.raises(DefaultConcurrencyException) as caught:
            Loan.check_version(5, 999)
        assert caught.value.code == "version_mismatch"


def test_a_bad_exception_setting_is_a_clear_error():
    with override_settings(MOTOFINAI_CONSISTENCY={"EXCEPTION": "no.such.Class"}):
        with pytest.raises(Exception, match=r"MOTOFINAI_CONSISTENCY\[\"EXCEPTION\"\] = 'no.such.Class' cannot"):
            Loan.check_version(5, 999)
    with override_settings(MOTOFINAI_CONSISTENCY={"EXCEPTOIN": "x"}):
        with pytest.raises(Exception, match="unknown key"):
            Loan.check_version(5, 999)


# --- VersionedModel -----------------------------------------------------------

@pytest.mark.smoke
def test_save_is_one_update_and_keeps_the_version_in_step():
    loan = Loan.objects.get(pk=5)
    start = loan.version
    loan.notes = "called"
    with CaptureQueriesContext(connection) as queries:
        loan.save()
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
    assert loan.version == start + 1 == stored(5)[2]
    loan.notes = "called again"
    loan.save()  # no conflict with itself
    assert stored(5)[1:] == ("called again", start + 2)


@pytest.mark.smoke
def test_the_seeds_increment_version_pattern_has_no_false_conflict():
    loan = Loan.objects.get(pk=5)
    start = loan.version
    loan.status = "approved"
    loan.increment_version()
    assert loan.version == start + 1
    loan.save(update_fields=["status", "version"])
    assert loan.version == start + 1
    assert stored(5)[::2] == ("approved", start + 1)
    # and it still detects a real conflict
    stale = Loan.objects.get(pk=5)
    update_elsewhere(5, notes="other")
    stale.increment_version()
    with pytest.raises(ConcurrencyException):  # noqa: F405
        stale.save(update_fields=["status", "version"])
    assert stale.version == start + 2, "a failed save leaves the instance as it was"


def test_increment_version_twice_then_plain_save():
    loan = Loan.objects.get(pk=7)
    start = loan.version
    loan.increment_version()
    loan.increment_version()
    loan.save()
    assert stored(7)[2] == start + 1 == loan.version


def test_blind_save_refreshes_the_version():
    loan = Loan.objects.get(pk=5)
    update_elsewhere(5, notes="other")
    loan.status = "approved"
    loan.save(update_fields=["status"])  # a blind write: accepted (strict off)
    assert loan.version == stored(5)[2]


@pytest.mark.smoke
def test_check_version():
    loan = Loan.objects.get(pk=5)
    assert Loan.check_version(5, loan.version) is None
    with pytest.raises(ConcurrencyException, match=rf"expected version {loan.version - 1}, found {loan.version}"):  # noqa: F405
        Loan.check_version(5, loan.version - 1)
    with pytest.raises(ConcurrencyException) as caught:  # noqa: F405
        Loan.check_version(424242, 1)
    assert caught.value.code == "object_deleted"


@pytest.mark.smoke
def test_get_for_update_returns_a_locked_instance():
    """The seed's example: get_for_update, change, save."""
    version = Loan.objects.get(pk=5).version
    with transaction.atomic():
        loan = Loan.get_for_update(Loan, 5, expected_version=version)
        assert isinstance(loan, Loan) and loan.version == version
        blocked = OtherSession(lambda: Loan.objects.filter(pk=5).update(notes="waited"))
        wait_for_lock_waiter()
        loan.status = "approved"
        loan.save()
    blocked.result()
    assert stored(5) == ("approved", "waited", version + 2)
    with transaction.atomic(), pytest.raises(ConcurrencyException) as caught:  # noqa: F405
        Loan.get_for_update(Loan, 5, expected_version=version)
    assert caught.value.code == "version_mismatch"
    with transaction.atomic(), pytest.raises(ConcurrencyException) as caught:  # noqa: F405
        VersionedModel.get_for_update(Loan, 424242, expected_version=1)  # noqa: F405
    assert caught.value.code == "object_deleted"
    with transaction.atomic(), pytest.raises(Loan.DoesNotExist):
        VersionedModel.get_for_update(Loan, 424242)  # noqa: F405


@pytest.mark.smoke
def test_bulk_create_and_loaddata_keep_given_versions(tmp_path):
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    common = dict(type="scooter", brand="Yamaha", year=2025, color="blue",
                  purchase_price=Decimal("70000.00"), notes="", created_at=now, updated_at=now, quantity=1,
                  approval_status="pending", approval_notes="", chassis_number="")
    Motor.objects.bulk_create([Motor(id=9001, model_name="Mio", version=7, last_modified_at=now, **common),
                               Motor(id=9002, model_name="Aerox", **common)])
    assert sql("SELECT id, version, last_modified_at FROM inventory_motor WHERE id > 9000 ORDER BY id")[0] == \
        (9001, 7, now)
    assert value("SELECT version FROM inventory_motor WHERE id = 9002") == 1
    fixture = tmp_path / "motors.json"
    call_command("dumpdata", "finance.motor", "--pks", "9001", "-o", str(fixture), verbosity=0)
    Motor.objects.filter(pk=9001).delete()
    call_command("loaddata", str(fixture), verbosity=0)
    assert sql("SELECT version, last_modified_at FROM inventory_motor WHERE id = 9001")[0] == (7, now)


@pytest.mark.smoke
def test_queryset_update_and_bulk_update_are_blind_writes_rejected_under_strict():
    sql("SELECT motofinai.enable_versioning('loans_loanapplication', strict => true)")
    try:
        loans = list(Loan.objects.filter(pk__in=[5, 7]))
        for loan in loans:
            loan.notes = "bulk"
        for write in (lambda: Loan.objects.filter(pk=5).update(notes="bulk"),
                      lambda: Loan.objects.bulk_update(loans, ["notes"])):
            with pytest.raises(DatabaseError) as caught:
                write()
            assert sqlstate(caught.value) == "MF001"
        Loan.objects.bulk_update(loans, ["notes", "version"])  # states the version: checked, accepted
        assert stored(7)[1] == "bulk"
    finally:
        sql("SELECT motofinai.enable_versioning('loans_loanapplication')")


# --- ConsistencyChecker ---------------------------------------------------------

@pytest.mark.smoke
def test_consistency_checker_the_seeds_examples():
    Loan.objects.filter(pk=6).update(status="completed")
    issues = ConsistencyChecker.check_loan_consistency(loan_id=6)  # noqa: F405
    assert issues == {"errors": [LOAN_6_UNPAID], "warnings": []}
    assert ConsistencyChecker.check_loan_consistency(Loan.objects.get(pk=6)) == issues  # noqa: F405
    assert ConsistencyChecker.check_loan_consistency(-1) == {"errors": ["Loan -1 not found"], "warnings": []}  # noqa: F405
    payment = Payment.objects.order_by("pk").first()
    assert ConsistencyChecker.check_payment_consistency(payment_id=payment.pk) == {"errors": [], "warnings": []}  # noqa: F405
    Payment.objects.filter(pk=payment.pk).update(payment_date=datetime.date.today() + datetime.timedelta(days=3))
    assert ConsistencyChecker.check_payment_consistency(payment_id=payment.pk)["errors"] == [  # noqa: F405
        "Payment date is in the future"]
    assert ConsistencyChecker.check_inventory_consistency(motor_id=424242) == {  # noqa: F405
        "errors": ["Motor 424242 not found"], "warnings": []}
    with pytest.raises(TypeError, match="loan_id must be an integer id or a model instance, not 'abc'"):
        ConsistencyChecker.check_loan_consistency("abc")  # noqa: F405


@pytest.mark.smoke
def test_check_system_consistency_is_one_query_and_the_seeds_shape():
    sql("SELECT motofinai_gen.inject(1)")
    with CaptureQueriesContext(connection) as queries:
        issues = ConsistencyChecker.check_system_consistency()  # noqa: F405
    assert len(queries.captured_queries) == 1
    assert set(issues) == {"errors", "warnings", "timestamp"}
    datetime.datetime.fromisoformat(issues["timestamp"])
    expected = sql("SELECT motofinai.consistency_report('system')")[0][0]
    assert {"errors": issues["errors"], "warnings": issues["warnings"]} == __import__("json").loads(expected)
    assert issues["errors"]


# --- TransactionConsistency -----------------------------------------------------

def approve_loan(loan_id):
    """The seed's example operation."""
    loan = LoanApplication.objects.get(id=loan_id)
    loan.status = "approved"
    loan.save()
    return loan


def complete_loan(loan_id):
    loan = LoanApplication.objects.get(id=loan_id)
    loan.status = "completed"
    loan.save()
    return loan


@pytest.mark.smoke
def test_execute_with_consistency_check_the_seeds_example():
    result = TransactionConsistency.execute_with_consistency_check(  # noqa: F405
        approve_loan, loan_id=1, consistency_check_func=ConsistencyChecker.check_loan_consistency)  # noqa: F405
    assert isinstance(result, Loan) and stored(1)[0] == "approved"


@pytest.mark.smoke
def test_execute_with_consistency_check_rolls_back_and_raises():
    before = stored(6)
    with pytest.raises(ConcurrencyException) as caught:  # noqa: F405
        TransactionConsistency.execute_with_consistency_check(  # noqa: F405
            complete_loan, 6, consistency_check_func=ConsistencyChecker.check_loan_consistency)  # noqa: F405
    assert caught.value.code == "consistency_check_failed"
    assert caught.value.details == {"errors": [LOAN_6_UNPAID], "warnings": []}
    assert stored(6) == before


def test_execute_with_consistency_check_honours_a_custom_check():
    calls = []

    def custom(loan):
        calls.append(loan.pk)
        return {"errors": ["custom says no"], "warnings": []}

    with pytest.raises(ConcurrencyException, match="Operation failed consistency check") as caught:  # noqa: F405
        TransactionConsistency.execute_with_consistency_check(approve_loan, 1, consistency_check_func=custom)  # noqa: F405
    assert calls == [1] and caught.value.details["errors"] == ["custom says no"]
    assert stored(1)[0] == "pending"


@pytest.mark.smoke
def test_execute_with_consistency_check_maps_the_commit_time_check():
    sql("SELECT motofinai.enforce_consistency()")
    with pytest.raises(ConcurrencyException) as caught:  # noqa: F405
        TransactionConsistency.execute_with_consistency_check(complete_loan, 6)  # noqa: F405
    assert caught.value.code == "consistency_check_failed"
    assert str(caught.value) == f"Loan 6 would be left inconsistent: {LOAN_6_UNPAID}"
    assert caught.value.details == {"errors": [LOAN_6_UNPAID], "warnings": []}
    assert stored(6)[0] == "active"


@pytest.mark.smoke
def test_safe_update_with_version():
    """The seed's example, on the real schema."""
    version = Loan.objects.get(pk=5).version
    with CaptureQueriesContext(connection) as queries:
        updated_loan = TransactionConsistency.safe_update_with_version(  # noqa: F405
            Loan, 5, current_version=version, update_fields={"status": "approved", "notes": "by phone",
                                                             "monthly_income": Decimal("1234.50")})
    assert len(queries.captured_queries) == 1
    assert isinstance(updated_loan, Loan)
    assert (updated_loan.status, updated_loan.version, updated_loan.monthly_income) == (
        "approved", version + 1, Decimal("1234.50"))
    assert updated_loan.last_modified_at == value("SELECT last_modified_at FROM loans_loanapplication WHERE id = 5")
    assert stored(5) == ("approved", "by phone", version + 1)
    with pytest.raises(ConcurrencyException) as caught:  # noqa: F405
        TransactionConsistency.safe_update_with_version(Loan, 5, version, {"notes": "stale"})  # noqa: F405
    assert caught.value.code == "version_mismatch" and caught.value.details[0]["current_version"] == version + 1
    motor = Motor.objects.exclude(pk=updated_loan.motor_id).first()
    moved = TransactionConsistency.safe_update_with_version(Loan, 5, version + 1, {"motor": motor})  # noqa: F405
    assert moved.motor_id == motor.pk
    with pytest.raises(ValueError, match="LoanApplication has no field 'amount'"):
        TransactionConsistency.safe_update_with_version(Loan, 5, version + 2, {"amount": 1})  # noqa: F405
    with pytest.raises(ValueError, match="non-empty dict"):
        TransactionConsistency.safe_update_with_version(Loan, 5, version + 2, {})  # noqa: F405


# --- RaceConditionDetector ------------------------------------------------------

@pytest.mark.smoke
def test_race_condition_detector_returns_the_seeds_keys():
    loan = Loan.objects.get(pk=5)
    for _ in range(3):
        loan.save()
    conflicts = RaceConditionDetector.detect_version_conflicts(LoanApplication, hours=1)  # noqa: F405
    assert {"detected_at", "time_window_hours", "high_version_objects"} <= set(conflicts)
    assert conflicts["time_window_hours"] == 1
    top = conflicts["high_version_objects"][0]
    assert (top["id"], top["version"]) == (5, loan.version)
    datetime.datetime.fromisoformat(top["last_modified"])
    deadlocks = RaceConditionDetector.detect_deadlocks(LoanApplication)  # noqa: F405
    assert {"detected_at", "objects_with_high_versions"} <= set(deadlocks)
    assert deadlocks["objects_with_high_versions"][0]["id"] == 5
    with pytest.raises(ValueError, match="hours must be a non-negative integer"):
        RaceConditionDetector.detect_version_conflicts(LoanApplication, hours="1")  # noqa: F405


# --- the installation: every connection, both drivers ---------------------------

def test_the_translation_is_installed_once_and_first():
    from motofinai_consistency.db import translate_errors

    def extra(execute, *args):
        return execute(*args)

    connection.close()
    with connection.execute_wrapper(extra):  # the first query connects inside it
        Loan.objects.count()
        assert connection.execute_wrappers == [translate_errors, extra]
    assert connection.execute_wrappers == [translate_errors]
    connection.close()
    Loan.objects.count()
    assert connection.execute_wrappers == [translate_errors]


def test_payment_schedule_save_keeps_step():
    installment = PaymentSchedule.objects.filter(loan_application_id=5).order_by("sequence").first()
    version = installment.version
    installment.save()
    assert installment.version == version + 1
