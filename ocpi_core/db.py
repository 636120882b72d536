"""Database helpers shared by the module services."""

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial, wraps
from typing import Any, TypeVar

import psycopg
import psycopg.types.datetime
from django.conf import settings
from django.db import IntegrityError, NotSupportedError, OperationalError, connections, transaction
from django.db.models import Field, Model

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=Model)


def retry_on_conflict(func: F) -> F:
    """Run a write once more when it lost a race on a unique key (two first PUTs of the same new object at once:
    the second insert fails; run again, it finds the row and replaces it). Only outside an outer transaction, where
    the failed attempt has rolled back completely."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except IntegrityError:
            if transaction.get_connection().in_atomic_block:
                raise
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _execute(sql: str, params: Sequence[Any], many: bool, context: dict[str, Any], *, prepare: bool) -> None:
    context["cursor"].execute(sql, params, prepare=prepare)


class _AsBytes(psycopg.adapt.Loader):
    """Loads a column as the bytes PostgreSQL sent (text format), converting nothing."""

    def load(self, data: Any) -> bytes:
        return bytes(data)


def pg_timestamptz(raw: bytes, *, using: str = "default") -> datetime:
    """A `timestamptz` read with `raw=("timestamptz",)`, as psycopg would have loaded it (aware datetime; the
    connection's DateStyle and time zone are psycopg's concern)."""
    connection = connections[using]
    loader = psycopg.types.datetime.TimestamptzLoader(psycopg.postgres.types["timestamptz"].oid, connection.connection)
    return loader.load(raw)  # type: ignore[no-any-return]


def pg_fetch(
    sql: str, params: Sequence[Any], *, using: str = "default", raw: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """Run one statement of a hot path that returns rows (a read, or a write with RETURNING) on PostgreSQL as a
    prepared statement, and return its rows.

    The SQL is written once (no ORM query building per call), the parameters are bound by the server and the
    statement is prepared at its first run on a connection, so PostgreSQL parses and plans it once: the token lookup,
    partner rows built, went from 0.27 to 0.19 ms (bench/README.md). This needs the connection's `prepare_threshold`
    set (config.settings.base.postgres_options): with Django's default, None, psycopg ignores `prepare=True`.
    OCPI_DB_PREPARE=false turns preparing off, for poolers in transaction mode that cannot keep prepared statements.
    `sql` uses %s placeholders and must name its columns: a prepared `SELECT *` breaks when a migration adds one.

    The statement goes through `connection.execute_wrappers` and is recorded in `connection.queries` like the ORM's
    (query-count tests and bench/diagnose.py see it). A connection found broken at the first statement is opened
    again once (outside a transaction), which spares these paths Django's per-request `SELECT 1` health check.

    `raw` names PostgreSQL types (`text`, `timestamptz` ...) whose columns come back as the bytes the server sent,
    unconverted: a page of 51 cached documents is passed on as bytes, and of its 51 timestamps only the last is ever
    needed (`pg_timestamptz`).
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise NotSupportedError("pg_fetch runs on PostgreSQL only")
    prepare = bool(getattr(settings, "OCPI_DB_PREPARE", True))
    fresh = connection.connection is None
    for attempt in (1, 2):
        connection.ensure_connection()
        started = time.perf_counter()
        try:
            with connection.wrap_database_errors:
                cursor = psycopg.Cursor(connection.connection)
                for type_name in raw:
                    cursor.adapters.register_loader(type_name, _AsBytes)
                try:
                    executor: Any = partial(_execute, prepare=prepare)
                    for wrapper in reversed(connection.execute_wrappers):  # as Django's cursors run them
                        executor = partial(wrapper, executor)
                    executor(sql, params, False, {"connection": connection, "cursor": cursor})
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
        except OperationalError:
            # a connection kept from an earlier request may have died (database restarted): reconnect once, outside
            # a transaction only (inside one, the transaction is lost anyway)
            if attempt == 2 or fresh or connection.in_atomic_block:
                raise
            connection.close()
            continue
        connection.health_check_done = True  # type: ignore[attr-defined]  # (no stub for it)
        if connection.queries_logged:
            connection.queries_log.append(
                {"sql": f"{sql} -- {list(params)!r}", "time": f"{time.perf_counter() - started:.3f}"}
            )
        return rows
    raise AssertionError("unreachable")


def fast_fetch(
    sql: str, params: Sequence[Any], *, using: str = "default", raw: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """A hot path's read: `pg_fetch` on PostgreSQL; on SQLite (the embedded default) the same statement through
    Django's cursor, datetimes bound as Django stores them (text that sorts as the instants do) and read back aware,
    and, when `raw` names any type, the text columns handed back as bytes, as pg_fetch hands the raw ones (timestamps
    stay datetimes there: `fast_timestamp` takes either)."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        return pg_fetch(sql, params, using=using, raw=raw)
    if connection.vendor != "sqlite":
        raise NotSupportedError("fast_fetch runs on PostgreSQL and SQLite")
    adapt = connection.ops.adapt_datetimefield_value
    bound = [adapt(value) if isinstance(value, datetime) else value for value in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, bound)
        rows = cursor.fetchall()
    return [tuple(_sqlite_value(value, bool(raw), connection) for value in row) for row in rows]


def _sqlite_value(value: Any, raw: bool, connection: Any) -> Any:
    if isinstance(value, datetime):  # a datetime column, parsed by sqlite3: made aware as the ORM does it
        return connection.ops.convert_datetimefield_value(value, None, connection)
    if raw and isinstance(value, str):
        return value.encode()
    return value


def fast_timestamp(raw: bytes | datetime, *, using: str = "default") -> datetime:
    """A timestamp column read by `fast_fetch` with `raw=("timestamptz", ...)`, as the ORM would have loaded it."""
    if isinstance(raw, datetime):  # SQLite
        return raw
    return pg_timestamptz(raw, using=using)


def pg_columns(model: type[Model], alias: str, names: Sequence[str] | None = None) -> tuple[str, list[Field]]:
    """`alias."column", ...` of a model's concrete fields (all, or those named, in the model's order) for a
    hand-written SELECT, with the fields in that order (for `pg_instance`)."""
    fields = [f for f in model._meta.concrete_fields if names is None or f.attname in names or f.name in names]
    return ", ".join(f'{alias}."{f.column}"' for f in fields), fields


def pg_instance(model: type[M], fields: Sequence[Field], values: Sequence[Any], *, using: str = "default") -> M:
    """A model instance from the values of `pg_columns(model, ...)` in a pg_fetch row, converted as the ORM
    converts them (JSON decoded ...). Fields not read are deferred, as with `.only()`."""
    connection = connections[using]
    converted = [
        value if value is None or not hasattr(field, "from_db_value") else field.from_db_value(value, None, connection)
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(using, [f.attname for f in fields], converted)
