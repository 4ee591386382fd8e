"""Settings of the test project: the package's app, the admin, and one app
(finance) over the Motofinai tables, configured as the Motofinai app is.

The connection comes from the libpq environment, like the other test scripts.
"""
import os

SECRET_KEY = "test-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
ROOT_URLCONF = "project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",   # the admin's CSS in the browser test (test_consistency_browser.py)
    "motofinai_consistency",
    "finance",
    "operators",   # admin pages of installments, payments and motors (the Consistency page links to them)
]
STATIC_URL = "/static/"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # the Motofinai app's: its ConcurrencyException becomes a 409
    "motofinai.apps.core.middleware.ExceptionHandlingMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

# The conflict is raised as the Motofinai app's own exception.
MOTOFINAI_CONSISTENCY = {"EXCEPTION": "motofinai.apps.core.exceptions.ConcurrencyException"}


def database(name):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "HOST": os.environ.get("PGHOST", "/var/run/postgresql"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
    }


DB = os.environ.get("MF_DJANGO_DB", "motofinai_django")
DATABASES = {
    "default": database(DB),
    # run.sh builds these as the Rust command's tests do (cli/tests/cli.rs): 2,000
    # generated loans with one injected case of every defect (and a copy for --fix);
    # one without the extension; and no server at all.
    "command": database(DB + "_cmd"),
    "fix": database(DB + "_fix"),
    "noext": database(DB + "_noext"),
    "unreachable": {**database(DB), "HOST": "127.0.0.1", "PORT": "1"},
}
