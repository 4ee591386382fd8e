"""bench/django_checker.sh's measurement: ConsistencyChecker.check_system_consistency()
(the package: one query to the extension) against the seed's own algorithm,
its per-loan ORM loop, with the field names corrected for the real schema.
Runs in tests/django's project (its models map the Motofinai tables)."""
import os
import statistics
import sys
import time
from datetime import date

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()

from django.db import models  # noqa: E402

from finance.models import LoanApplication, Motor, Payment, PaymentSchedule  # noqa: E402
from motofinai_consistency.concurrency import ConsistencyChecker  # noqa: E402

ZERO = models.Value(0, output_field=models.DecimalField())


def seed_check_loan(loan_id):
    """The seed's check_loan_consistency, query for query; corrected names:
    applicant -> submitted_by, loan.amount -> principal_amount, schedule
    amount -> principal_amount, loan -> loan_application, status "unpaid"
    -> not "paid" and due before today (the seed's join on a payment date
    that does not exist)."""
    issues = {"errors": [], "warnings": []}
    try:
        loan = LoanApplication.objects.select_related("submitted_by", "motor").get(id=loan_id)
    except LoanApplication.DoesNotExist:
        issues["errors"].append(f"Loan {loan_id} not found")
        return issues
    if loan.motor_id and not Motor.objects.filter(id=loan.motor_id).exists():
        issues["errors"].append(f"Loan references non-existent motor (ID: {loan.motor_id})")
    if not loan.submitted_by or not loan.submitted_by.is_active:
        issues["warnings"].append("Loan applicant is inactive")
    schedules = PaymentSchedule.objects.filter(loan_application=loan)
    total_scheduled = schedules.aggregate(models.Sum("principal_amount"))["principal_amount__sum"] or 0
    if total_scheduled != loan.principal_amount:
        issues["errors"].append(f"Payment schedule total ({total_scheduled}) does not match loan amount "
                                f"({loan.principal_amount})")
    payments = Payment.objects.filter(loan_application=loan)
    total_paid = payments.aggregate(models.Sum("amount"))["amount__sum"] or 0
    if loan.status == "completed" and total_paid < loan.principal_amount:
        issues["errors"].append(f"Loan marked completed but not fully paid (paid: {total_paid}, "
                                f"owed: {loan.principal_amount})")
    if total_paid > loan.principal_amount:
        issues["errors"].append(f"Total paid ({total_paid}) exceeds loan amount ({loan.principal_amount})")
    overdue = schedules.filter(due_date__lt=date.today()).exclude(status="paid")
    if overdue.exists():
        issues["warnings"].append(f"{overdue.count()} payment(s) are overdue")
    return issues


def seed_check_system():
    """The seed's check_system_consistency: every loan through the loop above."""
    issues = {"errors": [], "warnings": []}
    for loan in LoanApplication.objects.all():
        loan_issues = seed_check_loan(loan.id)
        issues["errors"].extend(loan_issues["errors"])
        issues["warnings"].extend(loan_issues["warnings"])
    orphaned = Payment.objects.filter(loan_application__isnull=True)
    if orphaned.exists():
        issues["errors"].append(f"Found {orphaned.count()} orphaned payment(s) with no loan")
    return issues


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main(rounds):
    loans = LoanApplication.objects.count()
    timed(ConsistencyChecker.check_system_consistency)  # warm-up: plans, caches
    package = [timed(ConsistencyChecker.check_system_consistency) for _ in range(rounds)]
    package_s = statistics.median(t for t, _ in package)
    seed_s, seed = timed(seed_check_system)
    report = package[0][1]
    print(f"loans: {loans}")
    print(f"package ConsistencyChecker.check_system_consistency(): {package_s * 1000:.0f} ms "
          f"(median of {rounds}; {len(report['errors'])} errors, {len(report['warnings'])} warnings, every rule)")
    print(f"seed per-loan ORM loop: {seed_s * 1000:.0f} ms ({seed_s / loans * 1000:.3f} ms per loan; "
          f"{len(seed['errors'])} errors, {len(seed['warnings'])} warnings, the seed's rules only)")
    print(f"ratio: {seed_s / package_s:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
