from django.contrib import admin

from finance.models import LoanApplication
from motofinai_consistency.admin import VersionedAdmin


@admin.register(LoanApplication)
class LoanApplicationAdmin(VersionedAdmin):
    fields = ["status", "notes"]
