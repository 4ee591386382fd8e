"""Transaction safety and the check functions, seen from Django. The numbers are
those of tests/regress/expected/06_enforcement.out (the same generated data)."""
import datetime
import json
import unittest
from decimal import Decimal

from django.db import IntegrityError, transaction

from finance.models import LoanApplication, Payment, PaymentSchedule
from motofinai_consistency.checker import consistency_report, findings as check
from motofinai_consistency.concurrency import ConcurrencyException
from motofinai_consistency.db import diagnostics
from support import as_role, create_role, drop_role, fresh_data, sql, sql_get_for_update as get_for_update, sqlstate, value

Loan = LoanApplication
LOAN_6_UNPAID = "Loan marked completed but not fully paid (paid: 4106.66, owed: 49279.96)"


class EnforcementTests(unittest.TestCase):
    def setUp(self):
        fresh_data()
        sql("SELECT motofinai.enforce_consistency()")

    def tearDown(self):
        sql("SELECT motofinai.enforce_consistency(false)")

    def test_violation_surfaces_at_atomic_exit(self):
        version = Loan.objects.get(pk=6).version
        saved = False
        with self.assertRaises(IntegrityError) as caught:
            with transaction.atomic():
                loan = Loan.objects.get(pk=6)
                loan.status = "completed"
                loan.save()
                saved = True  # the UPDATE itself passed; COMMIT is where it fails
        self.assertTrue(saved)
        self.assertEqual(sqlstate(caught.exception), "23514")
        constraint, _table, message, detail = diagnostics(caught.exception)
        self.assertEqual(constraint, "motofinai_consistency")
        self.assertEqual(message, f"Loan 6 would be left inconsistent: {LOAN_6_UNPAID}")
        self.assertEqual(json.loads(detail), {"errors": [LOAN_6_UNPAID], "warnings": []})
        self.assertEqual(tuple(sql("SELECT status, version FROM loans_loanapplication WHERE id = 6")[0]),
                         ("active", version))

    def test_in_autocommit_save_itself_raises(self):
        loan = Loan.objects.get(pk=6)
        loan.status = "completed"
        with self.assertRaises(IntegrityError):
            loan.save()
        self.assertEqual(value("SELECT status FROM loans_loanapplication WHERE id = 6"), "active")

    def test_set_constraints_immediate_checks_mid_transaction(self):
        with transaction.atomic():
            Loan.objects.filter(pk=6).update(status="completed")
            with self.assertRaises(IntegrityError) as caught:
                with transaction.atomic():  # a savepoint, so the outer block can go on
                    sql("SET CONSTRAINTS motofinai_consistency IMMEDIATE")
            self.assertEqual(sqlstate(caught.exception), "23514")
            Loan.objects.filter(pk=6).update(status="active")  # corrected before COMMIT: fine
        self.assertEqual(value("SELECT status FROM loans_loanapplication WHERE id = 6"), "active")

    def test_recording_a_payment_correctly_commits(self):
        installment = PaymentSchedule.objects.filter(loan_application_id=5, status="due").order_by("sequence")[0]
        with transaction.atomic():
            Payment.objects.create(
                loan_application_id=5, schedule=installment, amount=installment.total_amount,
                payment_date=datetime.date.today(), reference="OR-1", notes="", recorded_at=installment.created_at,
                recorded_by_id=1, bank_name="", bank_reference="", check_number="", payment_method="cash",
                reconciled=False)
            installment.status = "paid"
            installment.paid_at = installment.created_at
            installment.save()
        self.assertEqual(value("SELECT status FROM loans_paymentschedule WHERE id = %s", [installment.pk]), "paid")


class CheckTests(unittest.TestCase):
    def setUp(self):
        fresh_data()

    def test_loan_check_and_report(self):
        loan = Loan.objects.get(pk=6)
        loan.status = "completed"
        loan.save()  # enforcement is off here
        self.assertEqual(check("loan", 6), [{
            "severity": "error", "code": "completed_not_paid", "entity": "loan", "entity_id": 6,
            "message": LOAN_6_UNPAID,
            "details": {"owed": Decimal("49279.96"), "paid": Decimal("4106.66"), "installments": 12,
                        "unpaid_installments": 11}}])
        self.assertEqual(consistency_report("loan", 6), {"errors": [LOAN_6_UNPAID], "warnings": []})

    def test_paid_loan_left_active_is_a_warning(self):
        Loan.objects.filter(pk=15).update(status="active", completed_at=None)
        self.assertEqual([f["code"] for f in check("loan", 15)], ["paid_not_completed"])
        self.assertEqual(consistency_report("loan", 15),
                         {"errors": [], "warnings": ["Loan is fully paid but still active"]})

    def test_unknown_loan(self):
        self.assertEqual(check("loan", -1), [{
            "severity": "error", "code": "loan_not_found", "entity": "loan", "entity_id": -1,
            "message": "Loan -1 not found", "details": {"id": -1}}])

    def test_clean_data_has_only_the_recorded_overdue_warnings(self):
        findings = check("system")
        self.assertTrue(findings)
        self.assertEqual({(f["severity"], f["code"]) for f in findings}, {("warning", "overdue")})
        recorded = set(sql("SELECT code, entity, entity_id FROM motofinai_gen.expected"))
        self.assertLessEqual({(f["code"], f["entity"], f["entity_id"]) for f in findings}, recorded)

    def test_injected_defects_are_found_exactly(self):
        sql("SELECT motofinai_gen.inject(1)")
        expected = set(sql("SELECT code, entity, entity_id, subject FROM motofinai_gen.expected"))
        found = check("system")

        def subject(f):
            if f["entity"] == "table":
                return f"{f['details']['relation']}.{f['details']['column']}"
            return f["details"]["constraint"] if f["entity"] == "constraint" else None

        self.assertEqual({(f["code"], f["entity"], f["entity_id"], subject(f)) for f in found}, expected)
        self.assertEqual(len(found), len(expected))
        report = consistency_report("system")
        self.assertEqual(len(report["errors"]), sum(f["severity"] == "error" for f in found))
        self.assertEqual(len(report["warnings"]), sum(f["severity"] == "warning" for f in found))

    def test_run_check_records_a_run(self):
        sql("SELECT motofinai_gen.inject(1)")
        quick_errors = sum(f["severity"] == "error" for f in check("quick"))
        self.assertGreater(quick_errors, 0)
        run_id, scope, errors = sql("SELECT id, scope, errors FROM motofinai.run_check('quick')")[0]
        self.assertEqual((scope, errors), ("quick", quick_errors))
        self.assertEqual(value("SELECT max(id) FROM motofinai.check_runs"), run_id)


class AppRoleTests(unittest.TestCase):
    """The application's role needs only the grants docs/django.md lists."""

    ROLE = "motofinai_django_app"

    @classmethod
    def setUpClass(cls):
        fresh_data()
        create_role(cls.ROLE,
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                    "GRANT USAGE ON SCHEMA motofinai TO {role}")

    @classmethod
    def tearDownClass(cls):
        drop_role(cls.ROLE)

    def test_versioning_helpers_and_checks(self):
        stale = Loan.objects.get(pk=5)
        with as_role(self.ROLE):
            loan = Loan.objects.get(pk=5)
            loan.save()
            self.assertEqual(get_for_update(Loan, 5, loan.version)["version"], loan.version)
            self.assertEqual(check("loan", 6), [])
            self.assertEqual([f["code"] for f in check("quick")], [])
            self.assertEqual(len(consistency_report("system")["warnings"]), len(check("system")))
        with self.assertRaises(ConcurrencyException):
            with as_role(self.ROLE):
                stale.save()
