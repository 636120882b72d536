"""Migration helpers shared by the module apps."""

from typing import Any


def lz4_column(table: str, column: str) -> Any:
    """A RunPython pair storing a large text column lz4-compressed on PostgreSQL (14+, built with lz4).

    Texts over about 2 KB are compressed: reading a 50-location page spends most of its database time decompressing
    the cached documents, and lz4 decompresses about twice as fast as the default pglz (and compresses faster, which
    the traffic log's bodies gain on every request). Values written from then on are lz4; older ones are read as they
    are until written again. Other databases, and a PostgreSQL without lz4, keep their default.
    """

    def supported(schema_editor: Any) -> bool:
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return False
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
            )
            return cursor.fetchone() is not None

    def forward(apps: Any, schema_editor: Any) -> None:
        if supported(schema_editor):
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION lz4')

    def backward(apps: Any, schema_editor: Any) -> None:
        if supported(schema_editor):
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION DEFAULT')

    return forward, backward
