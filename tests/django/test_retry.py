"""retry_on_conflict: retries conflicts, re-raises the last one, swallows nothing else."""
import pytest
from django.db import transaction

from finance.models import LoanApplication
from motofinai_consistency.concurrency import ConcurrencyException, retry_on_conflict
from support import fresh_data, in_other_session, sql

Loan = LoanApplication


@pytest.fixture(autouse=True)
def data():
    fresh_data()


def bump_elsewhere(pk):
    in_other_session(lambda: Loan.objects.get(pk=pk).save())


@pytest.mark.smoke
def test_a_conflict_is_retried_with_fresh_data():
    stale = {"loan": Loan.objects.get(pk=5)}
    bump_elsewhere(5)
    calls = []

    @retry_on_conflict(attempts=3, backoff=0)
    def approve():
        calls.append(1)
        loan = stale.pop("loan", None) or Loan.objects.get(pk=5)  # first stale, then re-read
        with transaction.atomic():
            loan.status = "approved"
            loan.save()
        return loan.version

    version = approve()
    assert len(calls) == 2
    assert sql("SELECT status, version FROM loans_loanapplication WHERE id = 5")[0] == ("approved", version)


def test_the_last_conflict_is_raised_when_attempts_run_out():
    calls = []

    @retry_on_conflict(attempts=2, backoff=0)
    def always_stale():
        calls.append(1)
        loan = Loan.objects.get(pk=5)
        bump_elsewhere(5)
        loan.save()

    with pytest.raises(ConcurrencyException) as caught:
        always_stale()
    assert len(calls) == 2 and caught.value.code == "version_mismatch"


def test_other_errors_are_never_retried_or_swallowed():
    calls = []

    @retry_on_conflict(attempts=5, backoff=0)
    def broken():
        calls.append(1)
        raise ValueError("not a conflict")

    with pytest.raises(ValueError):
        broken()
    assert calls == [1]
    with pytest.raises(ConcurrencyException) as caught:  # a deleted row: retrying cannot help
        for attempt in retry_on_conflict(attempts=3, backoff=0):
            with attempt:
                calls.append(2)
                Loan.check_version(424242, 1)
    assert caught.value.code == "object_deleted" and calls == [1, 2]


def test_the_context_manager_form():
    versions = []
    for attempt in retry_on_conflict(attempts=3, backoff=0):
        with attempt:
            loan = Loan.objects.get(pk=7)
            if not versions:
                bump_elsewhere(7)
            versions.append(loan.version)
            loan.save()
    assert len(versions) == 2 and versions[1] == versions[0] + 1


def test_a_conflict_that_broke_the_outer_transaction_is_not_retried():
    calls = []
    with pytest.raises(ConcurrencyException):
        with transaction.atomic():
            for attempt in retry_on_conflict(attempts=3, backoff=0):
                with attempt:
                    calls.append(1)
                    loan = Loan.objects.get(pk=5)
                    bump_elsewhere(5) if len(calls) == 1 else None
                    loan.save()  # no savepoint of its own: the outer block must roll back
    assert calls == [1]


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"attempts": "3"}, {"backoff": -1}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        retry_on_conflict(**kwargs)
