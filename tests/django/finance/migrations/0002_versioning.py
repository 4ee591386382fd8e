# Versioning for the Motofinai tables with the package's operations. The test
# project's models are unmanaged (the test loads the project's DDL), so there
# are no AddFields here (0001_initial is the unmanaged models' state); an app whose models are managed puts these after the
# AddFields that makemigrations writes for VersionedModel's two fields.
from django.db import migrations

from motofinai_consistency.operations import EnableVersioning


class Migration(migrations.Migration):
    dependencies = [("finance", "0001_initial")]
    operations = [EnableVersioning(model) for model in ("loanapplication", "paymentschedule", "payment", "motor")]
