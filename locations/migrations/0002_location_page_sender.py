import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("locations", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="location",
            index=models.Index(
                django.db.models.functions.text.Lower("country_code"),
                django.db.models.functions.text.Lower("party_id"),
                models.F("last_updated"),
                models.F("id"),
                condition=models.Q(
                    ("partner__isnull", True),
                    models.Q(("publish", True), ("publish_allowed_to__isnull", False), _connector="OR"),
                ),
                include=("country_code", "party_id"),
                name="location_page_sender",
            ),
        ),
    ]
