from django.db import migrations

from ocpi_core.migration_ops import lz4_column


class Migration(migrations.Migration):
    dependencies = [("tariffs", "0001_initial")]

    operations = [migrations.RunPython(*lz4_column("tariffs_tariff", "doc"), elidable=True)]
