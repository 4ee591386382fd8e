"""The seed's main scenario end to end: two people open the same loan, both
submit; the second (stale) page gets the conflict and the first writer's
data stays. Through an edit view, the admin, and the seed's API view."""
import re

import pytest

from finance.models import LoanApplication
from motofinai_consistency.forms import VersionedModelForm
from support import fresh_data, in_other_session, sql

Loan = LoanApplication


@pytest.fixture(autouse=True)
def data():
    fresh_data()


def stored(pk):
    return tuple(sql("SELECT status, notes, version FROM loans_loanapplication WHERE id = %s", [pk])[0])


def hidden_version(html):
    return int(re.search(r'<input type="hidden" name="version" value="(\d+)"', html).group(1))


def first_writer_saves(pk, notes):
    def save():
        loan = Loan.objects.get(pk=pk)
        loan.notes = notes
        loan.save()
    in_other_session(save)


@pytest.mark.smoke
def test_a_stale_edit_page_gets_a_form_error_and_the_first_write_stays(client):
    page = client.get("/loans/5/edit/")
    version = hidden_version(page.content.decode())
    assert version == stored(5)[2]
    first_writer_saves(5, "first writer")
    response = client.post("/loans/5/edit/", {"status": "approved", "notes": "second writer", "version": version})
    assert response.status_code == 200
    assert "changed by someone else after you opened it" in response.content.decode()
    assert stored(5) == ("active", "first writer", version + 1)
    # reloading shows the current version; saving from there works
    fresh = hidden_version(client.get("/loans/5/edit/").content.decode())
    response = client.post("/loans/5/edit/", {"status": "approved", "notes": "second, reloaded", "version": fresh})
    assert response.status_code == 302
    assert stored(5) == ("approved", "second, reloaded", version + 2)


def test_a_save_racing_the_validation_is_rejected_by_the_database_with_a_409(client, monkeypatch):
    """Should the other save land between validation and save(), the trigger rejects it."""
    version = stored(5)[2]
    monkeypatch.setattr(VersionedModelForm, "clean", lambda form: form.cleaned_data)  # no read at validation
    first_writer_saves(5, "first writer")
    response = client.post("/loans/5/edit/", {"status": "approved", "notes": "second writer", "version": version})
    assert response.status_code == 409
    assert "was modified by another transaction" in response.content.decode()
    assert stored(5) == ("active", "first writer", version + 1)


@pytest.mark.smoke
def test_the_admin_change_page_carries_the_version(staff_client):
    url = "/admin/finance/loanapplication/5/change/"
    version = hidden_version(staff_client.get(url).content.decode())
    first_writer_saves(5, "first writer")
    response = staff_client.post(url, {"status": "approved", "notes": "admin edit", "version": version, "_save": "1"})
    assert response.status_code == 200
    assert "changed by someone else after you opened it" in response.content.decode()
    assert stored(5) == ("active", "first writer", version + 1)
    version = hidden_version(staff_client.get(url).content.decode())
    response = staff_client.post(url, {"status": "approved", "notes": "admin edit", "version": version, "_save": "1"})
    assert response.status_code == 302
    assert stored(5) == ("approved", "admin edit", version + 1)


@pytest.mark.smoke
def test_the_seeds_api_view_answers_a_stale_version_with_409(client):
    version = stored(5)[2]
    first_writer_saves(5, "first writer")
    response = client.post("/api/loans/5/approve/", {"version": version})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "version_mismatch" and error["details"][0]["current_version"] == version + 1
    assert stored(5) == ("active", "first writer", version + 1)
    response = client.post("/api/loans/5/approve/", {"version": version + 1})
    assert response.status_code == 200 and response.json()["data"]["version"] == version + 2
