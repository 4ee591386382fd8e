"""Retrying a unit of work that lost a version conflict.

    @retry_on_conflict(attempts=3, backoff=0.05)
    def approve(loan_id): ...

    for attempt in retry_on_conflict(attempts=3):
        with attempt:
            ...

Each attempt must re-read what it changes (a retry with the stale instance
fails the same way). Only conflicts are retried: a stale version
(``version_mismatch``) and the server's serialization failure or deadlock
(40001, 40P01). When attempts run out the last failure is raised; nothing is
ever swallowed. A transaction that the failure left unusable (the conflict
escaped a savepoint-less ``atomic`` block around this one) is not retried.
"""
import functools
import time

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

from . import exceptions
from .db import sqlstate

RETRYABLE_SQLSTATES = ("40001", "40P01")
IN_FAILED_TRANSACTION = 3  # libpq's PQTRANS_INERROR, as both drivers report it


def transaction_broken(connection):
    """Whether the failure left the transaction unusable: only rolling back the
    whole outer block helps then, so retrying inside it would fail again."""
    raw = connection.connection
    status = getattr(getattr(raw, "info", None), "transaction_status", None)
    return connection.needs_rollback or (status is not None and int(status) == IN_FAILED_TRANSACTION)


def is_retryable(exc):
    if exceptions.is_conflict(exc):
        return getattr(exc, "code", None) == exceptions.VERSION_MISMATCH
    return isinstance(exc, OperationalError) and sqlstate(exc) in RETRYABLE_SQLSTATES


class _Attempt:
    def __init__(self, retry, number):
        self.retry, self.number = retry, number

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            self.retry.done = True
            return False
        return self.retry.absorb(exc, self.number)


class retry_on_conflict:
    def __init__(self, attempts=3, backoff=0.05, max_backoff=2.0, using=DEFAULT_DB_ALIAS):
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be an integer >= 1, not {attempts!r}")
        if not isinstance(backoff, (int, float)) or backoff < 0:
            raise ValueError(f"backoff must be a number of seconds >= 0, not {backoff!r}")
        self.attempts, self.backoff, self.max_backoff, self.using = attempts, backoff, max_backoff, using
        self.done = False

    def absorb(self, exc, number):
        """True to swallow ``exc`` and try again; False lets it propagate."""
        if not is_retryable(exc) or number >= self.attempts or transaction_broken(connections[self.using]):
            return False
        time.sleep(min(self.backoff * 2 ** (number - 1), self.max_backoff))
        return True

    def __iter__(self):
        self.done = False
        for number in range(1, self.attempts + 1):
            yield _Attempt(self, number)
            if self.done:
                return

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for attempt in retry_on_conflict(self.attempts, self.backoff, self.max_backoff, self.using):
                with attempt:
                    return func(*args, **kwargs)
        return wrapper
