"""Settings of the test project: one app (finance) over the Motofinai tables.

The connection comes from the libpq environment, like the other test scripts.
"""
import os

SECRET_KEY = "test-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["finance"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        # The PostgreSQL backend plus one execute wrapper that turns the
        # extension's version conflict into finance.versioning.ConcurrencyException.
        "ENGINE": "finance.db",
        "NAME": os.environ.get("MF_DJANGO_DB", "motofinai_django"),
        "HOST": os.environ.get("PGHOST", "/var/run/postgresql"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
    }
}
