"""Models over the Motofinai tables, column for column as in
tests/fixtures/motofinai_schema.sql. The test loads that DDL itself, so the
models are unmanaged; the four versioned ones add version/last_modified_at."""
from django.db import models

from motofinai_consistency.models import VersionedModel

MONEY = {"max_digits": 12, "decimal_places": 2}
RATE = {"max_digits": 5, "decimal_places": 2}


class User(models.Model):
    password = models.CharField(max_length=128)
    last_login = models.DateTimeField(null=True)
    is_superuser = models.BooleanField()
    username = models.CharField(max_length=150, unique=True)
    first_name = models.CharField(max_length=150)
    last_name = models.CharField(max_length=150)
    email = models.CharField(max_length=254)
    is_staff = models.BooleanField()
    is_active = models.BooleanField()
    date_joined = models.DateTimeField()
    role = models.CharField(max_length=20)

    class Meta:
        managed = False
        db_table = "users_user"


class FinancingTerm(models.Model):
    term_years = models.PositiveSmallIntegerField()
    interest_rate = models.DecimalField(**RATE)
    is_active = models.BooleanField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "loans_financingterm"


class Stock(models.Model):
    brand = models.CharField(max_length=100)
    model_name = models.CharField(max_length=120)
    year = models.PositiveIntegerField()
    color = models.CharField(max_length=50)
    quantity_available = models.PositiveIntegerField()
    quantity_sold = models.PositiveIntegerField()
    quantity_reserved = models.PositiveIntegerField()
    quantity_repossessed = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "inventory_stock"


class Motor(VersionedModel):
    type = models.CharField(max_length=20)
    brand = models.CharField(max_length=100)
    model_name = models.CharField(max_length=120)
    year = models.PositiveIntegerField()
    color = models.CharField(max_length=50)
    purchase_price = models.DecimalField(**MONEY)
    notes = models.TextField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    quantity = models.PositiveIntegerField()
    stock = models.ForeignKey(Stock, models.PROTECT, null=True)
    approval_status = models.CharField(max_length=20)
    approved_by = models.ForeignKey(User, models.PROTECT, null=True, related_name="+")
    approved_at = models.DateTimeField(null=True)
    approval_notes = models.TextField()
    chassis_number = models.CharField(max_length=100)

    class Meta:
        managed = False
        db_table = "inventory_motor"


class LoanApplication(VersionedModel):
    applicant_first_name = models.CharField(max_length=100)
    applicant_last_name = models.CharField(max_length=100)
    applicant_email = models.CharField(max_length=254)
    applicant_phone = models.CharField(max_length=32)
    date_of_birth = models.DateField(null=True)
    employment_status = models.CharField(max_length=20)
    employer_name = models.CharField(max_length=150)
    monthly_income = models.DecimalField(**MONEY)
    loan_amount = models.DecimalField(**MONEY)
    down_payment = models.DecimalField(**MONEY)
    principal_amount = models.DecimalField(**MONEY)
    interest_rate = models.DecimalField(**RATE)
    monthly_payment = models.DecimalField(**MONEY)
    has_valid_id = models.BooleanField()
    has_proof_of_income = models.BooleanField()
    notes = models.TextField()
    status = models.CharField(max_length=20)
    submitted_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True)
    activated_at = models.DateTimeField(null=True)
    completed_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField()
    financing_term = models.ForeignKey(FinancingTerm, models.PROTECT)
    motor = models.ForeignKey(Motor, models.PROTECT)
    submitted_by = models.ForeignKey(User, models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(User, models.PROTECT, null=True, related_name="+")
    custom_interest_rate = models.DecimalField(null=True, **RATE)
    custom_term_years = models.PositiveSmallIntegerField(null=True)
    second_approval_at = models.DateTimeField(null=True)
    second_approval_by = models.ForeignKey(User, models.PROTECT, null=True, related_name="+")

    class Meta:
        managed = False
        db_table = "loans_loanapplication"


class PaymentSchedule(VersionedModel):
    loan_application = models.ForeignKey(LoanApplication, models.CASCADE, related_name="schedule")
    sequence = models.PositiveIntegerField()
    due_date = models.DateField()
    principal_amount = models.DecimalField(**MONEY)
    interest_amount = models.DecimalField(**MONEY)
    total_amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=10)
    paid_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "loans_paymentschedule"


class Payment(VersionedModel):
    loan_application = models.ForeignKey(LoanApplication, models.CASCADE, related_name="payments")
    schedule = models.OneToOneField(PaymentSchedule, models.PROTECT)
    amount = models.DecimalField(**MONEY)
    payment_date = models.DateField()
    reference = models.CharField(max_length=100)
    notes = models.TextField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(User, models.PROTECT, related_name="+")
    bank_name = models.CharField(max_length=150)
    bank_reference = models.CharField(max_length=150)
    check_date = models.DateField(null=True)
    check_number = models.CharField(max_length=50)
    payment_method = models.CharField(max_length=20)
    reconciled = models.BooleanField()
    reconciled_at = models.DateTimeField(null=True)
    reconciled_by = models.ForeignKey(User, models.PROTECT, null=True, related_name="+")

    class Meta:
        managed = False
        db_table = "payments_payment"


class RepossessionCase(models.Model):
    loan_application = models.OneToOneField(LoanApplication, models.PROTECT)
    status = models.CharField(max_length=20)
    overdue_installments = models.PositiveIntegerField()
    total_overdue_amount = models.DecimalField(**MONEY)
    last_reminder_sent_at = models.DateTimeField(null=True)
    resolution_notes = models.TextField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "repossession_repossessioncase"
