# The admin's Consistency page: a model without a table, for its permissions.
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Consistency",
            fields=[("id", models.AutoField(primary_key=True, serialize=False))],
            options={
                "verbose_name": "consistency",
                "verbose_name_plural": "consistency",
                "db_table": "motofinai_consistency_page",
                "managed": False,
                "default_permissions": ("view",),
                "permissions": [
                    ("apply_consistency_fixes", "Can apply the planned consistency repairs"),
                    ("accept_consistency_findings", "Can accept consistency findings"),
                ],
            },
        ),
    ]
