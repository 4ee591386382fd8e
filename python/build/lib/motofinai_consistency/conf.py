"""The package's settings: one dict, ``settings.MOTOFINAI_CONSISTENCY``.

    MOTOFINAI_CONSISTENCY = {
        # raised for version conflicts and deleted rows (the app's own class,
        # which its middleware turns into a 409)
        "EXCEPTION": "motofinai.apps.core.exceptions.ConcurrencyException",
    }
"""
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS = {
    "EXCEPTION": "motofinai_consistency.exceptions.ConcurrencyException",
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
