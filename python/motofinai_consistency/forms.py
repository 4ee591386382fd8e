"""The stale-page flow: the version the page was rendered with travels in a
hidden field, and the save states it.

If someone saved the row since, ``is_valid()`` is False with a form error
(one read at validation), and should a save slip in between validation and
``save()``, the database's trigger rejects it with the conflict exception:
the first writer's data stays either way.

While the table is in observe mode (``EnableVersioning(..., mode="observe")``,
``SetVersioningMode``) the form does as the trigger does: a stale page is
saved over the other writer's data (last writer wins, as without versioning)
and the trigger counts and logs the conflict (``motofinai.recent_conflicts``).
The same read at validation tells the mode, from the trigger's arguments in
``pg_trigger`` (no privilege needed).
"""
from django import forms
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models.expressions import RawSQL

STALE_MESSAGE = ("This record was changed by someone else after you opened it (your version {expected}, "
                 "now {current}). Reload the page to see their changes, then make yours again.")


class VersionedModelForm(forms.ModelForm):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["version"].initial = self.instance.version
        else:
            self.fields["version"].required = False  # a new row: the database sets version 1

    def clean(self):
        cleaned = super().clean()
        expected = cleaned.get("version")
        if self.instance.pk is not None and expected is not None:
            current, observing = _current_version(self.instance)
            if current is None:
                raise ValidationError("This record was deleted by someone else after you opened it.",
                                      code="object_deleted")
            if current != expected:
                if not observing:
                    raise ValidationError(STALE_MESSAGE.format(expected=expected, current=current),
                                          code="version_mismatch")
                # Observe mode: saved anyway, and the trigger logs it. The row
                # will not be at our version + 1: the save reads it back.
                self.instance.__dict__["_motofinai_reread_version"] = True
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        # The save must state the version the page showed, not the one the
        # view (or the admin) just read for this POST.
        if self.instance.pk is not None and self.cleaned_data.get("version") is not None:
            self.instance.version = self.cleaned_data["version"]


# True when the table's versioning trigger runs in observe mode: its fifth
# argument (src/versioning/mod.rs, Options::trigger_args) is 'observe', and
# pg_trigger.tgargs ends with it, each argument NUL-terminated.
OBSERVING = ("EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = %s::regclass "
             "AND t.tgname = 'motofinai_versioning' AND t.tgenabled <> 'D' "
             "AND substr(t.tgargs, length(t.tgargs) - 8) = %s)")
OBSERVE_ARGUMENT = b"\x00observe\x00"


def _current_version(instance):
    """(the stored version or None, whether the table is in observe mode), in one query."""
    from .operations import schema_table

    queryset = type(instance)._default_manager.filter(pk=instance.pk)
    if connections[queryset.db].vendor != "postgresql":
        return queryset.values_list("version", flat=True).first(), False
    observing = RawSQL(OBSERVING, [schema_table(instance._meta.db_table), OBSERVE_ARGUMENT])
    row = queryset.annotate(motofinai_observing=observing).values_list("version", "motofinai_observing").first()
    return (None, False) if row is None else row


def versioned_modelform_factory(model, form=VersionedModelForm, **kwargs):
    return forms.modelform_factory(model, form=form, **kwargs)


class ConflictAsFormErrorMixin:
    """For ``UpdateView``: a conflict raised by the save (the race after
    validation) becomes a form error and a 409 instead of a server error."""

    conflict_status = 409

    def form_valid(self, form):
        from .exceptions import is_conflict

        try:
            return super().form_valid(form)
        except Exception as exc:
            if not is_conflict(exc):
                raise
            form.add_error(None, ValidationError(str(exc), code=getattr(exc, "code", None)))
            response = self.form_invalid(form)
            response.status_code = self.conflict_status
            return response
