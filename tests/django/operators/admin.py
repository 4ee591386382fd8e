from django.contrib import admin

from finance.models import Motor, Payment, PaymentSchedule
from motofinai_consistency.admin import VersionedAdmin


@admin.register(PaymentSchedule)
class PaymentScheduleAdmin(VersionedAdmin):
    fields = ["status"]


@admin.register(Payment)
class PaymentAdmin(VersionedAdmin):
    fields = ["notes"]


@admin.register(Motor)
class MotorAdmin(VersionedAdmin):
    fields = ["notes"]
