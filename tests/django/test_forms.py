"""The seed's main scenario end to end: two people open the same loan, both
submit; the second (stale) page gets the conflict and the first writer's
data stays. Through an edit view, the admin, and the seed's API view."""
import re

import pytest

from finance.models import LoanApplication
from motofinai_consistency.forms import VersionedModelForm
from support import fresh_data, in_other_session, sql, value

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


# --- observe mode: the form does as the trigger does ------------------------------

@pytest.fixture
def observing():
    """loans_loanapplication in observe mode (SetVersioningMode), counters at zero."""
    from test_operations import Migration
    from motofinai_consistency.operations import SetVersioningMode

    sql("SELECT motofinai.conflict_stats_reset()")
    migration = Migration(SetVersioningMode("loanapplication", "observe"))
    migration.apply()
    yield
    migration.unapply()
    assert value("SELECT mode FROM motofinai.versioned_tables WHERE table_name = 'loans_loanapplication'::regclass") \
        == "enforce"


def observed_conflicts(pk):
    return sql("SELECT kind, mode, key, expected_version, found_version FROM motofinai.recent_conflicts "
               "WHERE table_name = 'loans_loanapplication'::regclass AND key = %s ORDER BY at", [pk])


@pytest.mark.smoke
def test_a_stale_form_post_in_observe_mode_saves_and_logs_instead_of_a_conflict(client, observing):
    version = hidden_version(client.get("/loans/5/edit/").content.decode())
    first_writer_saves(5, "first writer")
    response = client.post("/loans/5/edit/", {"status": "approved", "notes": "second writer", "version": version})
    assert response.status_code == 302  # saved: the last writer wins, as without versioning
    assert stored(5) == ("approved", "second writer", version + 2)
    assert observed_conflicts(5) == [("stale_version", "observe", 5, version, version + 1)]
    assert value("SELECT observed_conflicts FROM motofinai.conflict_stats "
                 "WHERE table_name = 'loans_loanapplication'::regclass") == 1


def test_a_save_racing_the_validation_in_observe_mode_is_saved_and_logged_not_a_409(client, monkeypatch, observing):
    version = stored(5)[2]
    monkeypatch.setattr(VersionedModelForm, "clean", lambda form: form.cleaned_data)  # no read at validation
    first_writer_saves(5, "first writer")
    response = client.post("/loans/5/edit/", {"status": "approved", "notes": "second writer", "version": version})
    assert response.status_code == 302
    assert stored(5) == ("approved", "second writer", version + 2)
    assert observed_conflicts(5) == [("stale_version", "observe", 5, version, version + 1)]


def test_in_observe_mode_the_form_saves_and_its_instance_follows_the_row(observing):
    from finance.views import LoanForm

    version = stored(5)[2]
    first_writer_saves(5, "first writer")
    form = LoanForm({"status": "approved", "notes": "second writer", "version": version},
                    instance=Loan.objects.get(pk=5))
    assert form.is_valid(), form.errors
    loan = form.save()
    assert loan.version == stored(5)[2] == version + 2  # read back: not version + 1
    loan.notes = "saved again"
    loan.save()  # not stale: no second entry
    assert stored(5) == ("approved", "saved again", version + 3)
    assert len(observed_conflicts(5)) == 1
    # a deleted row is still a form error: the trigger has nothing to say about DELETE
    pending = Loan.objects.get(pk=1)
    sql("DELETE FROM loans_loanapplication WHERE id = 1")
    form = LoanForm({"status": "approved", "notes": "x", "version": pending.version}, instance=pending)
    assert not form.is_valid() and form.errors.as_data()["__all__"][0].code == "object_deleted"


def test_in_observe_mode_the_seeds_api_view_still_checks_the_posted_version(client, observing):
    """get_for_update(expected_version=...) is the application's own check, not the trigger's."""
    version = stored(5)[2]
    first_writer_saves(5, "first writer")
    response = client.post("/api/loans/5/approve/", {"version": version})
    assert response.status_code == 409
    assert observed_conflicts(5) == []
