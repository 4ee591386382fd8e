"""The package's settings: one dict, ``settings.MOTOFINAI_CONSISTENCY``.

    MOTOFINAI_CONSISTENCY = {
        # raised for version conflicts and deleted rows (the app's own class,
        # which its middleware turns into a 409)
        "EXCEPTION": "motofinai.apps.core.exceptions.ConcurrencyException",
        # the admin's Consistency page and the HTML report (docs/django.md, section 12)
        "FULL_CHECK_MAX_AGE_HOURS": 26,   # a full check older than this is flagged
        "ADMIN_PAGE_SIZE": 50,            # findings per page
        "ENTITY_MODELS": {"loan": "loans.LoanApplication"},   # entity -> model for the links
    }
"""
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS = {
    "EXCEPTION": "motofinai_consistency.exceptions.ConcurrencyException",
    # The admin's Consistency page and the HTML report.
    "FULL_CHECK_MAX_AGE_HOURS": 26,
    "ADMIN_PAGE_SIZE": 50,
    # Finding entity -> "app_label.ModelName" whose admin change page a finding
    # links to; entities not named here are found by their table.
    "ENTITY_MODELS": {},
}


def setting(name):
    """One setting, read each time (so override_settings works in tests)."""
    configured = getattr(settings, "MOTOFINAI_CONSISTENCY", {})
    if not isinstance(configured, dict):
        raise ImproperlyConfigured("MOTOFINAI_CONSISTENCY must be a dict, e.g. {'EXCEPTION': 'app.exceptions.Conflict'}")
    unknown = set(configured) - set(DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(
            f"MOTOFINAI_CONSISTENCY has unknown key(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    return configured.get(name, DEFAULTS[name])
