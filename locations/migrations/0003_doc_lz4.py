from django.db import migrations

from ocpi_core.migration_ops import lz4_column


class Migration(migrations.Migration):
    dependencies = [("locations", "0002_location_page_sender")]

    operations = [migrations.RunPython(*lz4_column("locations_location", "doc"), elidable=True)]
