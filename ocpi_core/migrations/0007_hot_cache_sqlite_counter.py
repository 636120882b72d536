from typing import Any

from django.db import migrations

# SQLite (the embedded default) has no LISTEN/NOTIFY: every change to the tables the per-process hot caches read
# (ocpi_core.hot) adds one to a one-row counter, whatever made it (the ORM, a queryset update, SQL by hand), and every
# process reads the counter (ocpi_core.hot.SqliteChangeCounter). PostgreSQL notifies instead (0005).
# Django alters an SQLite table by rebuilding it, which drops its triggers: a later migration that alters one of these
# tables must create its triggers again (forward() below is idempotent). Until then the counter finds them missing and
# the caches work without it (tokens read on every request), never with stale entries.
_TABLES = ("ocpi_core_partner", "ocpi_core_partnertoken", "ocpi_core_party", "ocpi_core_partnerendpoint")
_EVENTS = ("INSERT", "UPDATE", "DELETE")
_COUNTER = "ocpi_hot_changes"


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    schema_editor.execute(
        f'CREATE TABLE IF NOT EXISTS "{_COUNTER}" ("id" integer NOT NULL PRIMARY KEY CHECK ("id" = 1), '
        '"changes" integer NOT NULL)'
    )
    schema_editor.execute(f'INSERT OR IGNORE INTO "{_COUNTER}" ("id", "changes") VALUES (1, 0)')
    for table in _TABLES:
        for event in _EVENTS:
            schema_editor.execute(
                f'CREATE TRIGGER IF NOT EXISTS "{table}_hot_{event.lower()}" AFTER {event} ON "{table}" '
                f'BEGIN UPDATE "{_COUNTER}" SET "changes" = "changes" + 1 WHERE "id" = 1; END'
            )


def backward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    for table in _TABLES:
        for event in _EVENTS:
            schema_editor.execute(f'DROP TRIGGER IF EXISTS "{table}_hot_{event.lower()}"')
    schema_editor.execute(f'DROP TABLE IF EXISTS "{_COUNTER}"')


class Migration(migrations.Migration):
    dependencies = [("ocpi_core", "0006_trafficlog_message_id_255")]

    operations = [migrations.RunPython(forward, backward)]
