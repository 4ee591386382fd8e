# Versioning for the Motofinai tables, as docs/django.md shows it. The test
# project's models are unmanaged (the test loads the project's DDL), so this
# migration has only the database side; an app whose models are managed wraps
# the same RunSQL in SeparateDatabaseAndState with AddField state operations.
from django.db import migrations

VERSIONED = ["loans_loanapplication", "loans_paymentschedule", "payments_payment", "inventory_motor"]


class Migration(migrations.Migration):
    dependencies = []
    operations = [
        migrations.RunSQL(
            sql=f"SELECT motofinai.enable_versioning('{table}')",
            reverse_sql=f"SELECT motofinai.disable_versioning('{table}')",
        )
        for table in VERSIONED
    ]
