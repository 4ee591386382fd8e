"""The conflict exception, and the one place that builds it.

The seed raises ``ConcurrencyException(message, code=..., details=[...])``
with ``code`` ``version_mismatch`` or ``object_deleted``. Which class is
raised is a setting (``MOTOFINAI_CONSISTENCY["EXCEPTION"]``), so the
Motofinai app gets its own ``motofinai.apps.core.exceptions.ConcurrencyException``,
the one its middleware turns into a 409.
"""
from django.core.exceptions import ImproperlyConfigured
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

from .conf import setting

VERSION_MISMATCH = "version_mismatch"
OBJECT_DELETED = "object_deleted"
CONSISTENCY_CHECK_FAILED = "consistency_check_failed"


class ConcurrencyException(Exception):
    """The default conflict exception, with the Motofinai app's constructor
    (message, code, status_code, details) so either class can be configured."""

    status_code = 409
    error_code = "concurrency_error"
    message = "Resource was modified by another user. Please refresh and try again"

    def __init__(self, message=None, code=None, status_code=None, details=None):
        self.message = message or self.message
        self.code = self.error_code = code or self.error_code
        self.status_code = status_code or self.status_code
        self.details = details if details is not None else []
        super().__init__(self.message)


class ConflictDetail(dict):
    """The facts of one conflict: a dict (the seed reads ``details[0]["current_version"]``)
    with ``to_dict()``, which the Motofinai app's ``to_response_dict()`` calls on each detail."""

    def to_dict(self):
        return dict(self)


def exception_class():
    path = setting("EXCEPTION")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f'MOTOFINAI_CONSISTENCY["EXCEPTION"] = {path!r} cannot be imported: {exc}') from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        raise ImproperlyConfigured(f'MOTOFINAI_CONSISTENCY["EXCEPTION"] = {path!r} is not an exception class')
    return cls


def concurrency_error(message, code, details=None):
    """An instance of the configured class; ``code`` and ``details`` are set
    as attributes too, whatever that class's constructor keeps."""
    exc = exception_class()(message, code=code, details=details)
    if getattr(exc, "code", None) != code:
        exc.code = code
    if getattr(exc, "details", None) is None:
        exc.details = details
    return exc


def _iso(value):
    """A timestamp as ISO 8601 text (the seed's ``last_modified_at.isoformat()``)."""
    if value is None or hasattr(value, "isoformat"):
        return value.isoformat() if value is not None else None
    parsed = parse_datetime(str(value).replace(" ", "T", 1))
    return parsed.isoformat() if parsed else str(value)


def version_mismatch(table, key, expected, current, last_modified, message=None):
    """The stale-version conflict, worded as the extension's trigger words it."""
    message = message or (
        f"{table} row {key} was modified by another transaction (expected version {expected}, found {current})")
    detail = ConflictDetail(table=table, key=key, expected_version=expected, current_version=current,
                            last_modified=_iso(last_modified))
    return concurrency_error(message, VERSION_MISMATCH, [detail])


def object_deleted(table, key, message=None):
    message = message or f"{table} row {key} no longer exists"
    return concurrency_error(message, OBJECT_DELETED, [ConflictDetail(table=table, key=key)])


def is_conflict(exc, code=None):
    """Whether ``exc`` is a conflict raised by this package (of ``code``, if given)."""
    return isinstance(exc, exception_class()) and code in (None, getattr(exc, "code", None))
