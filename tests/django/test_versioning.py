"""Optimistic locking through the Django ORM, against the real extension."""
import datetime
import unittest
from decimal import Decimal

from django.apps import apps
from django.core.management import call_command
from django.db import DatabaseError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from finance.models import LoanApplication, Motor
from motofinai_consistency.concurrency import ConcurrencyException
from motofinai_consistency.db import from_jsonb
from support import (OtherSession, fresh_data, in_other_session, sql, sql_get_for_update as get_for_update, sqlstate,
                     value, wait_for_lock_waiter)

Loan = LoanApplication


def db_row(pk):
    """(notes, version) of a loan as stored."""
    return tuple(sql("SELECT notes, version FROM loans_loanapplication WHERE id = %s", [pk])[0])


class SchemaTests(unittest.TestCase):
    def test_models_map_every_column_of_the_ddl(self):
        for model in apps.get_app_config("finance").get_models():
            table = model._meta.db_table
            columns = {c for (c,) in sql("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_schema = 'public' AND table_name = %s", [table])}
            self.assertEqual({f.column for f in model._meta.concrete_fields}, columns, table)

    def test_migration_enabled_versioning(self):
        rows = sql("SELECT table_name::text, protocol, strict, trigger_enabled FROM motofinai.versioned_tables "
                   "ORDER BY 1")
        self.assertEqual(rows, [(t, "expected", False, True) for t in
                                ("inventory_motor", "loans_loanapplication", "loans_paymentschedule",
                                 "payments_payment")])

    def test_migration_reverses_to_disable_versioning(self):
        try:
            call_command("migrate", "finance", "zero", verbosity=0)
            self.assertEqual(value("SELECT count(*) FROM motofinai.versioned_tables"), 0)
            # the columns and their data stay
            self.assertEqual(value("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
                                   "AND column_name IN ('version', 'last_modified_at')"), 8)
        finally:
            call_command("migrate", "finance", verbosity=0)
        self.assertEqual(value("SELECT count(*) FROM motofinai.versioned_tables WHERE trigger_enabled"), 4)


class PlainSaveTests(unittest.TestCase):
    """save() sends every column, the version included: the `expected` protocol."""

    def setUp(self):
        fresh_data()

    def test_create_takes_version_and_time_from_the_database(self):
        motor = Motor.objects.create(
            id=1000, type="scooter", brand="Yamaha", model_name="Mio", year=2025, color="blue",
            purchase_price=Decimal("70000.00"), notes="", created_at=timezone.now(), updated_at=timezone.now(),
            quantity=1, approval_status="pending", approval_notes="", chassis_number="")
        self.assertEqual(motor.version, 1)
        self.assertIsInstance(motor.last_modified_at, datetime.datetime)
        self.assertEqual(value("SELECT version FROM inventory_motor WHERE id = %s", [motor.pk]), 1)

    def test_save_bumps_the_version_and_keeps_the_instance_in_step(self):
        loan = Loan.objects.get(pk=5)
        start = loan.version
        stale_stamp = loan.last_modified_at
        loan.notes = "called the applicant"
        loan.save()
        self.assertEqual(db_row(5), ("called the applicant", start + 1))
        self.assertEqual(loan.version, start + 1)
        # save() stated the old last_modified_at too; the trigger stamped the time anyway
        self.assertGreater(value("SELECT last_modified_at FROM loans_loanapplication WHERE id = 5"), stale_stamp)
        loan.notes = "called again"
        loan.save()  # no conflict with itself
        self.assertEqual(db_row(5), ("called again", start + 2))

    def test_second_writer_gets_concurrency_exception_and_first_write_stays(self):
        first = Loan.objects.get(pk=5)
        second = Loan.objects.get(pk=5)
        start = first.version
        first.notes = "first writer"
        first.save()
        second.notes = "second writer"
        with self.assertRaises(ConcurrencyException) as caught:
            second.save()
        self.assertEqual(db_row(5), ("first writer", start + 1))
        self.assertEqual(str(caught.exception), "loans_loanapplication row 5 was modified by another "
                                                f"transaction (expected version {start}, found {start + 1})")
        self.assertEqual(caught.exception.details[0]["table"], "loans_loanapplication")
        self.assertIsInstance(caught.exception.__cause__, OperationalError)
        self.assertEqual(sqlstate(caught.exception.__cause__), "40001")

    def test_conflict_in_another_session_rolls_back_the_whole_atomic_block(self):
        mine = Loan.objects.get(pk=5)
        start6 = db_row(6)

        def other_writer():
            loan = Loan.objects.get(pk=5)
            loan.notes = "other session"
            loan.save()

        in_other_session(other_writer)
        with self.assertRaises(ConcurrencyException):
            with transaction.atomic():
                Loan.objects.filter(pk=6).update(notes="part of my change")
                mine.notes = "mine"
                mine.save()
        self.assertEqual(db_row(5)[0], "other session")
        self.assertEqual(db_row(6), start6)

    def test_a_reload_then_retry_succeeds(self):
        stale = Loan.objects.get(pk=5)
        Loan.objects.get(pk=5).save()
        for attempt in range(2):
            try:
                with transaction.atomic():
                    stale.notes = "retried"
                    stale.save()
                break
            except ConcurrencyException:
                stale.refresh_from_db()
        self.assertEqual(attempt, 1)
        self.assertEqual(db_row(5)[0], "retried")

    def test_after_a_rollback_the_instance_is_ahead_and_must_be_reloaded(self):
        loan = Loan.objects.get(pk=5)
        start = loan.version
        with self.assertRaises(RuntimeError):
            with transaction.atomic():
                loan.save()
                raise RuntimeError("something else failed")
        self.assertEqual((loan.version, db_row(5)[1]), (start + 1, start))
        with self.assertRaisesRegex(ConcurrencyException, rf"expected version {start + 1}, found {start}"):
            loan.save()
        loan.refresh_from_db()
        loan.save()
        self.assertEqual(db_row(5)[1], start + 1)

    def test_other_serialization_failures_are_not_mapped(self):
        with self.assertRaises(OperationalError) as caught:
            sql("DO $$ BEGIN RAISE EXCEPTION 'plain serialization failure' USING ERRCODE = '40001'; END $$")
        self.assertNotIsInstance(caught.exception, ConcurrencyException)
        self.assertEqual(sqlstate(caught.exception), "40001")

    def test_a_deleted_row_is_not_saved_back(self):
        loan = Loan.objects.get(pk=20)
        sql("DELETE FROM loans_loanapplication WHERE id = 20")
        with self.assertRaisesRegex(ConcurrencyException, "loans_loanapplication row 20 no longer exists") as caught:
            loan.save()
        self.assertEqual(caught.exception.code, "object_deleted")
        self.assertEqual(value("SELECT count(*) FROM loans_loanapplication WHERE id = 20"), 0)

    def test_bulk_update_with_the_version_is_checked(self):
        loans = list(Loan.objects.filter(pk__in=[5, 6]).order_by("pk"))
        Loan.objects.get(pk=6).save()  # loans[1] is now stale
        before = [db_row(5), db_row(6)]
        for loan in loans:
            loan.notes = "bulk"
        with self.assertRaises(ConcurrencyException):
            Loan.objects.bulk_update(loans, ["notes", "version"])
        self.assertEqual([db_row(5), db_row(6)], before)  # one statement: neither row changed


class BlindWriteTests(unittest.TestCase):
    """Writes that do not state the version: accepted and bumped, unless strict."""

    def setUp(self):
        fresh_data()

    def tearDown(self):
        sql("SELECT motofinai.enable_versioning('loans_loanapplication')")  # strict off again

    def test_update_fields_without_version_is_a_blind_write(self):
        first = Loan.objects.get(pk=5)
        second = Loan.objects.get(pk=5)
        start = first.version
        first.status = "completed"
        first.save()
        second.notes = "blind"
        second.save(update_fields=["notes"])  # not checked: second never saw version start + 1
        self.assertEqual(db_row(5), ("blind", start + 2))
        self.assertEqual(second.version, start + 2)  # re-read by VersionedModel.save

    def test_update_fields_with_version_is_checked(self):
        first = Loan.objects.get(pk=5)
        second = Loan.objects.get(pk=5)
        first.save()
        second.notes = "checked"
        with self.assertRaises(ConcurrencyException):
            second.save(update_fields=["notes", "version"])
        second.refresh_from_db()
        second.notes = "checked"
        second.save(update_fields=["notes", "version"])
        self.assertEqual(db_row(5), ("checked", second.version))

    def test_queryset_update_is_a_blind_write(self):
        before = dict(sql("SELECT id, version FROM loans_loanapplication WHERE id IN (5, 6)"))
        self.assertEqual(Loan.objects.filter(pk__in=[5, 6]).update(notes="bulk"), 2)
        after = dict(sql("SELECT id, version FROM loans_loanapplication WHERE id IN (5, 6)"))
        self.assertEqual(after, {pk: v + 1 for pk, v in before.items()})

    def test_update_or_create_is_a_blind_write(self):
        start = db_row(5)[1]
        loan, created = Loan.objects.update_or_create(pk=5, defaults={"notes": "upserted"})
        self.assertFalse(created)
        self.assertEqual(db_row(5), ("upserted", start + 1))
        self.assertEqual(loan.version, start + 1)

    def test_strict_rejects_blind_writes(self):
        sql("SELECT motofinai.conflict_stats_reset()")
        sql("SELECT motofinai.enable_versioning('loans_loanapplication', strict => true)")
        loan = Loan.objects.get(pk=5)
        start = db_row(5)
        loan.notes = "blind"
        with self.assertRaises(DatabaseError) as caught:
            loan.save(update_fields=["notes"])
        self.assertIs(type(caught.exception), DatabaseError)  # psycopg has no class for MF001
        self.assertEqual(sqlstate(caught.exception), "MF001")
        self.assertEqual(caught.exception.__cause__.diag.message_primary,
                         'UPDATE of "loans_loanapplication" must state the version column "version"')
        with self.assertRaises(DatabaseError) as caught:
            Loan.objects.filter(pk=5).update(notes="bulk")
        self.assertEqual(sqlstate(caught.exception), "MF001")
        with self.assertRaises(DatabaseError) as caught:
            Loan.objects.update_or_create(pk=5, defaults={"notes": "upserted"})
        self.assertEqual(sqlstate(caught.exception), "MF001")
        self.assertEqual(db_row(5), start)
        self.assertEqual(value("SELECT strict_rejections FROM motofinai.conflict_stats "
                               "WHERE table_name = 'loans_loanapplication'::regclass"), 3)
        # what still works under strict: writes that state the version
        loan.save(update_fields=["notes", "version"])
        loan.notes = "plain save"
        loan.save()
        self.assertEqual(db_row(5), ("plain save", start[1] + 2))
        # a deliberate bulk write states the stored version itself
        Loan.objects.filter(pk=5).update(notes="bulk", version=F("version"))
        self.assertEqual(db_row(5), ("bulk", start[1] + 3))


class RowLockTests(unittest.TestCase):
    """select_for_update() and motofinai.get_for_update, in two sessions."""

    def setUp(self):
        fresh_data()

    def test_a_locked_row_fails_get_for_update_nowait_and_lock_timeout(self):
        version = Loan.objects.get(pk=5).version
        timeouts_before = value("SELECT motofinai.lock_timeouts()")

        def nowait():
            return get_for_update(Loan, 5, version, nowait=True)

        def with_lock_timeout():
            with transaction.atomic():
                sql("SET LOCAL lock_timeout = '200ms'")
                return get_for_update(Loan, 5, version)

        with transaction.atomic():
            Loan.objects.select_for_update().get(pk=5)
            for attempt in (nowait, with_lock_timeout):
                with self.assertRaises(OperationalError) as caught:
                    in_other_session(attempt)
                self.assertEqual(sqlstate(caught.exception), "55P03", attempt.__name__)
        self.assertEqual(value("SELECT motofinai.lock_timeouts()") - timeouts_before, 2)

    def test_a_waiting_get_for_update_sees_the_conflict_after_commit(self):
        def reader(version):
            with transaction.atomic():
                return get_for_update(Loan, 5, version)

        with transaction.atomic():
            loan = Loan.objects.select_for_update().get(pk=5)
            waiter = OtherSession(reader, loan.version)  # blocks on our lock
            wait_for_lock_waiter()
            loan.notes = "holder"
            loan.save()
        with self.assertRaisesRegex(ConcurrencyException,
                                    rf"expected version {loan.version - 1}, found {loan.version}"):
            waiter.result()

    def test_get_for_update_returns_the_row_and_holds_the_lock(self):
        version = Loan.objects.get(pk=5).version
        with transaction.atomic():
            row = get_for_update(Loan, 5, expected_version=version)
            self.assertEqual((row["id"], row["version"], row["status"]), (5, version, "active"))
            def lock_it():
                with transaction.atomic():
                    return Loan.objects.select_for_update(nowait=True).get(pk=5)

            with self.assertRaises(OperationalError) as caught:
                in_other_session(lock_it)
            self.assertEqual(sqlstate(caught.exception), "55P03")
            loan = Loan.objects.get(pk=5)  # read under our lock: nobody can change it now
            loan.notes = "locked change"
            loan.save()
        self.assertEqual(db_row(5), ("locked change", version + 1))

    def test_get_for_update_with_a_stale_version_or_a_missing_row(self):
        version = Loan.objects.get(pk=5).version
        Loan.objects.get(pk=5).save()
        with self.assertRaisesRegex(ConcurrencyException, rf"expected version {version}, found {version + 1}"):
            get_for_update(Loan, 5, expected_version=version)
        with self.assertRaisesRegex(ConcurrencyException, "loans_loanapplication row 424242 no longer exists") as caught:
            get_for_update(Loan, 424242)
        self.assertEqual(caught.exception.code, "object_deleted")  # MF002, mapped by the package
        self.assertEqual(sqlstate(caught.exception.__cause__), "MF002")

    def test_safe_update_with_version(self):
        version = Loan.objects.get(pk=5).version
        row = from_jsonb(value("SELECT motofinai.safe_update_with_version('loans_loanapplication', 5, %s, %s)",
                               [version, '{"notes": "approved by phone"}']))
        self.assertEqual((row["notes"], row["version"]), ("approved by phone", version + 1))
        with self.assertRaises(ConcurrencyException):
            sql("SELECT motofinai.safe_update_with_version('loans_loanapplication', 5, %s, %s)",
                [version, '{"notes": "stale"}'])
        self.assertEqual(db_row(5), ("approved by phone", version + 1))

    def test_delete_is_not_checked_but_safe_delete_with_version_is(self):
        stale = Loan.objects.get(pk=20)
        Loan.objects.get(pk=20).save()
        stale.delete()  # Django's DELETE states no version
        self.assertEqual(value("SELECT count(*) FROM loans_loanapplication WHERE id = 20"), 0)
        version = Loan.objects.get(pk=1).version
        Loan.objects.get(pk=1).save()
        with self.assertRaises(ConcurrencyException):
            sql("SELECT motofinai.safe_delete_with_version('loans_loanapplication', 1, %s)", [version])
        self.assertTrue(value("SELECT motofinai.safe_delete_with_version('loans_loanapplication', 1, %s)",
                              [version + 1]))
        self.assertFalse(value("SELECT motofinai.safe_delete_with_version('loans_loanapplication', 1, %s)",
                               [version + 1]))
