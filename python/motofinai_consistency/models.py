"""``VersionedModel``: the seed's abstract model, with the database doing the work."""
from django.db import DatabaseError, models

from . import exceptions
from .fields import LastModifiedField, VersionField


def _no_row_updated(exc):
    # Django's own errors for a forced UPDATE (or update_fields) that matched
    # no row: there is no driver error behind them.
    return exc.__cause__ is None and "did not affect any rows" in str(exc)


class VersionedModel(models.Model):
    """A model whose table is versioned (``EnableVersioning`` in a migration).

    ``save()`` states the version it read; the trigger rejects it if the row
    moved on, else stores version + 1 and the time. The instance follows
    without an extra query. A row deleted meanwhile is never re-inserted.
    """

    version = VersionField(help_text="Version number for optimistic locking (kept by the database)")
    last_modified_at = LastModifiedField(help_text="Time of the last change (kept by the database)")

    class Meta:
        abstract = True

    def increment_version(self):
        """The seed's step before ``save(update_fields=[..., "version"])``.

        The trigger adds 1 itself, so ``save()`` states the version read
        (this number minus the increments) and no false conflict arises."""
        self.version += 1
        self.__dict__["_motofinai_increments"] = self.__dict__.get("_motofinai_increments", 0) + 1

    def save(self, *args, **kwargs):
        increments = self.__dict__.pop("_motofinai_increments", 0)
        reread = self.__dict__.pop("_motofinai_reread_version", False)
        updating = not self._state.adding and not kwargs.get("force_insert")
        if not updating:
            return super().save(*args, **kwargs)
        kwargs.setdefault("force_update", kwargs.get("update_fields") is None)
        self.version -= increments
        try:
            super().save(*args, **kwargs)
        except BaseException as exc:
            self.version += increments          # the instance stays as the caller left it
            self.__dict__["_motofinai_increments"] = increments
            if reread:
                self.__dict__["_motofinai_reread_version"] = True
            if isinstance(exc, DatabaseError) and _no_row_updated(exc):
                raise exceptions.object_deleted(self._meta.db_table, self.pk) from exc
            raise
        fields = kwargs.get("update_fields")
        if (fields is None or "version" in fields) and not reread:
            # The UPDATE stated our version and the trigger accepted it:
            # the row holds exactly our version + 1.
            self.version += 1
        else:
            # A blind write: the row was at a version we never saw. Or a
            # stale save the form let through in observe mode: the trigger
            # stored the row's version + 1, not ours.
            self.refresh_from_db(fields=["version", "last_modified_at"])

    save.alters_data = True

    @classmethod
    def check_version(cls, instance_id, expected_version):
        """Raise the conflict exception unless row ``instance_id`` is at ``expected_version``."""
        row = cls._default_manager.filter(pk=instance_id).values_list("version", "last_modified_at").first()
        if row is None:
            raise exceptions.object_deleted(cls._meta.db_table, instance_id)
        if row[0] != expected_version:
            raise exceptions.version_mismatch(cls._meta.db_table, instance_id, expected_version, *row)

    @staticmethod
    def get_for_update(model_class, instance_id, expected_version=None, nowait=False):
        """Lock the row (``SELECT ... FOR UPDATE``, inside a transaction) and return
        the model instance, after checking it is still at ``expected_version``."""
        try:
            obj = model_class._default_manager.select_for_update(nowait=nowait).get(pk=instance_id)
        except model_class.DoesNotExist:
            if expected_version is None:
                raise
            # The caller read it at some version: it was deleted since.
            raise exceptions.object_deleted(model_class._meta.db_table, instance_id) from None
        if expected_version is not None and obj.version != expected_version:
            raise exceptions.version_mismatch(model_class._meta.db_table, instance_id, expected_version,
                                              obj.version, obj.last_modified_at)
        return obj


class Consistency(models.Model):
    """No table: the admin's "Consistency" page (``admin_page.py``) hangs on
    this model, and its permissions are the page's:

    - ``motofinai_consistency.view_consistency``: see the page;
    - ``motofinai_consistency.apply_consistency_fixes``: apply the planned
      repairs and record a check run;
    - ``motofinai_consistency.accept_consistency_findings``: accept a finding
      (with a reason and an expiry) and withdraw an acceptance.
    """

    id = models.AutoField(primary_key=True)  # stated, so DEFAULT_AUTO_FIELD never asks for a migration

    class Meta:
        managed = False
        db_table = "motofinai_consistency_page"  # never created: nothing reads or writes it
        verbose_name = "consistency"
        verbose_name_plural = "consistency"
        default_permissions = ("view",)
        permissions = [
            ("apply_consistency_fixes", "Can apply the planned consistency repairs"),
            ("accept_consistency_findings", "Can accept consistency findings"),
        ]
