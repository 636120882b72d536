from django.db import migrations

from ocpi_core.migration_ops import lz4_column


class Migration(migrations.Migration):
    dependencies = [("ocpi_core", "0003_partner_push_state")]

    # every OCPI request writes a row with up to OCPI_TRAFFIC_LOG_BODY_LIMIT characters of each body: lz4 compresses
    # them several times faster than the default pglz
    operations = [
        migrations.RunPython(*lz4_column("ocpi_core_trafficlog", "request_body"), elidable=True),
        migrations.RunPython(*lz4_column("ocpi_core_trafficlog", "response_body"), elidable=True),
    ]
