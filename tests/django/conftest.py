"""pytest-django against the databases run.sh built (not a test database of
its own): the tests commit for real and use second sessions, as the
application does, and each test makes the data it needs (support.fresh_data)."""
import pytest
from django.contrib.auth import get_user_model


@pytest.fixture(scope="session")
def django_db_setup():
    """run.sh created and migrated the databases; use them as they are."""


@pytest.fixture(scope="session", autouse=True)
def _database_access(django_db_blocker):
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def staff_client(client):
    """The test client, logged in as a superuser (for the admin)."""
    user = get_user_model().objects.filter(username="admin").first() or \
        get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client
