from typing import Any

from django.db import migrations

# Every committed change to the tables the per-process hot caches read (ocpi_core.hot) notifies `ocpi_hot`, whatever
# made it: the ORM, a queryset update, SQL by hand. Statement-level triggers: one notification per statement, and
# PostgreSQL folds identical notifications of one transaction into one.
_TABLES = ("ocpi_core_partner", "ocpi_core_partnertoken", "ocpi_core_party", "ocpi_core_partnerendpoint")

_FUNCTION = """
CREATE OR REPLACE FUNCTION ocpi_hot_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ocpi_hot', TG_TABLE_NAME);
    RETURN NULL;
END;
$$
"""


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(_FUNCTION)
    for table in _TABLES:
        schema_editor.execute(
            f'CREATE TRIGGER "{table}_hot_notify" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION ocpi_hot_notify()"
        )


def backward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in _TABLES:
        schema_editor.execute(f'DROP TRIGGER IF EXISTS "{table}_hot_notify" ON "{table}"')
    schema_editor.execute("DROP FUNCTION IF EXISTS ocpi_hot_notify()")


class Migration(migrations.Migration):
    dependencies = [("ocpi_core", "0004_trafficlog_lz4")]

    operations = [migrations.RunPython(forward, backward)]
