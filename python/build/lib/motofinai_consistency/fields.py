"""The two columns the extension's trigger owns.

On Django 5+ the database fills them on INSERT (``db_default``); Django 4.2
has no ``db_default``, so the Python default is sent and the trigger keeps it
(it keeps any given version >= 1 and timestamp). Either way the INSERT's
``RETURNING`` hands back what was stored (``db_returning``).
"""
import django
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

HAS_DB_DEFAULT = django.VERSION >= (5, 0)


class _DatabaseOwned:
    db_returning = True

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        if HAS_DB_DEFAULT:
            kwargs.setdefault("db_default", self.database_default())
        else:
            kwargs.setdefault("default", self.python_default)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        # The defaults above depend on the Django version: leave them out, so
        # a migration written under Django 4.2 stays the same under 5.2.
        name, path, args, kwargs = super().deconstruct()
        for key in ("default", "db_default", "editable"):
            kwargs.pop(key, None)
        return name, path, args, kwargs


class VersionField(_DatabaseOwned, models.IntegerField):
    """The row's version: 1 on INSERT, stored + 1 on every UPDATE (by the trigger)."""

    python_default = 1

    @staticmethod
    def database_default():
        return 1


class LastModifiedField(_DatabaseOwned, models.DateTimeField):
    """When the row was last changed: the trigger stamps the transaction's time."""

    python_default = staticmethod(timezone.now)

    @staticmethod
    def database_default():
        return Now()
