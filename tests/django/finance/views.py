"""The two view shapes of docs/django.md: an edit page whose form carries the
version, and the seed's API view (get_for_update with the posted version)."""
from django.http import JsonResponse
from django.views import View
from django.views.generic import UpdateView

from finance.models import LoanApplication
from motofinai_consistency.concurrency import VersionedModel
from motofinai_consistency.forms import ConflictAsFormErrorMixin, VersionedModelForm


class LoanForm(VersionedModelForm):
    class Meta:
        model = LoanApplication
        fields = ["status", "notes"]


class LoanUpdateView(ConflictAsFormErrorMixin, UpdateView):
    model = LoanApplication
    form_class = LoanForm
    template_name = "finance/loan_form.html"
    success_url = "/done/"


class LoanApproveView(View):
    """The seed's view: a stale version raises ConcurrencyException, which the
    app's middleware turns into a 409."""

    def post(self, request, pk):
        from django.db import transaction

        with transaction.atomic():
            loan = VersionedModel.get_for_update(LoanApplication, pk, expected_version=int(request.POST["version"]))
            loan.status = "approved"
            loan.save()
        return JsonResponse({"success": True, "data": {"id": loan.pk, "version": loan.version}})
