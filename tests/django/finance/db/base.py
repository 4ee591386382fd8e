"""ENGINE "finance.db": Django's PostgreSQL backend, with the version-conflict
translation installed on every connection (the one place it is done)."""
from django.db.backends.postgresql import base

from finance.versioning import translate_version_conflict


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(translate_version_conflict)
