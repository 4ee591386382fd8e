from django.apps import AppConfig
from django.db import connections
from django.db.backends.signals import connection_created


class MotofinaiConsistencyConfig(AppConfig):
    name = "motofinai_consistency"
    verbose_name = "Motofinai consistency"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
        from .db import install

        # The one place where the extension's errors become the conflict
        # exception: every connection, whichever driver, from its first query.
        connection_created.connect(install, dispatch_uid="motofinai_consistency.install")
        for connection in connections.all():
            if connection.connection is not None:  # opened before the app registry was ready
                install(connection)
