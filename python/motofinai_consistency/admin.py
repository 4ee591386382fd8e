"""``VersionedAdmin``: the admin change page carries the version it showed.

    @admin.register(LoanApplication)
    class LoanAdmin(VersionedAdmin):
        ...

or mix ``VersionedAdminMixin`` into your own ``ModelAdmin``. A POST from a
stale change page re-renders the page with the conflict as an error; the
row keeps the first writer's data.

This module also puts the "Consistency" page on the default admin site
(``admin_page.py``; on a custom site, ``admin_page.register(site)``).
"""
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets

from .forms import VersionedModelForm


class VersionedAdminMixin:
    form = VersionedModelForm

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + [f for f in ("last_modified_at",) if obj is not None and f not in fields]

    def get_fields(self, request, obj=None):
        # "version" is the form's hidden field; keep it in the page.
        fields = list(super().get_fields(request, obj))
        return fields if "version" in fields else fields + ["version"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The page shows "version" (the form's own hidden field); the model
        # form must not be built from the model's field of that name, which
        # only the database writes.
        fields = kwargs.get("fields") or flatten_fieldsets(self.get_fieldsets(request, obj))
        kwargs["fields"] = [f for f in fields if f != "version"]
        return super().get_form(request, obj, change, **kwargs)


class VersionedAdmin(VersionedAdminMixin, admin.ModelAdmin):
    pass


def _register_the_consistency_page():
    from django.apps import apps

    if apps.is_installed("django.contrib.admin"):
        from .admin_page import register

        register()


_register_the_consistency_page()
