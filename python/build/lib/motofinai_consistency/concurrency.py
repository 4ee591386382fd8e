"""Drop-in for the Motofinai app's ``motofinai.apps.core.concurrency``:

    from motofinai_consistency.concurrency import *

The same names, signatures and return shapes, backed by the extension.
"""
from .checker import ConsistencyChecker
from .detection import RaceConditionDetector
from . import exceptions
from .models import VersionedModel
from .retry import retry_on_conflict
from .transactions import TransactionConsistency

__all__ = [
    "ConcurrencyException",
    "ConsistencyChecker",
    "RaceConditionDetector",
    "TransactionConsistency",
    "VersionedModel",
    "retry_on_conflict",
]


def __getattr__(name):
    # ConcurrencyException is the configured class (the app's own, which its
    # middleware turns into a 409), so `except ConcurrencyException` catches
    # exactly what this package raises.
    if name == "ConcurrencyException":
        return exceptions.exception_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
