"""The stale-page flow: the version the page was rendered with travels in a
hidden field, and the save states it.

If someone saved the row since, ``is_valid()`` is False with a form error
(one read at validation), and should a save slip in between validation and
``save()``, the database's trigger rejects it with the conflict exception:
the first writer's data stays either way.
"""
from django import forms
from django.core.exceptions import ValidationError

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
            current = type(self.instance)._default_manager.filter(pk=self.instance.pk).values_list(
                "version", flat=True).first()
            if current is None:
                raise ValidationError("This record was deleted by someone else after you opened it.",
                                      code="object_deleted")
            if current != expected:
                raise ValidationError(STALE_MESSAGE.format(expected=expected, current=current),
                                      code="version_mismatch")
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        # The save must state the version the page showed, not the one the
        # view (or the admin) just read for this POST.
        if self.instance.pk is not None and self.cleaned_data.get("version") is not None:
            self.instance.version = self.cleaned_data["version"]


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
