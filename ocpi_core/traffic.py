"""The traffic log: every inbound and outbound OCPI request, with tokens redacted and bodies truncated."""

import atexit
import functools
import logging
import os
import re
import threading
from typing import Any

import orjson
from celery.signals import worker_process_shutdown
from django.conf import settings
from django.db import close_old_connections, connections, router, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from ocpi_core.constants import ModuleID
from ocpi_core.models import Partner, TrafficLog

logger = logging.getLogger(__name__)

_KNOWN_MODULES = frozenset({*ModuleID.values, "versions"})
_VERSION_RE = re.compile(r"^\d+(?:\.\d+)+$")
_REDACTED = "***"
_TOKEN_TAIL = 128  # a token is at most 64 characters (CiString(64)); JSON spacing around it


def module_of_path(path: str) -> str:
    """`credentials`, `locations`, `versions` ... for an OCPI path (ours or a partner's, with or without its query
    string: a pull's pages carry offset and limit); '' when unknown."""
    segments = [segment for segment in path.split("?", 1)[0].split("#", 1)[0].split("/") if segment]
    for segment in segments:
        if segment in _KNOWN_MODULES:
            return segment
    if segments and _VERSION_RE.match(segments[-1]):
        return "versions"  # version details
    return ""


def _redact(value: Any) -> Any:
    """Replace every string under a `token` key (Credentials.token) by ***; token objects (dicts) stay."""
    if isinstance(value, dict):
        return {k: (_REDACTED if k == "token" and isinstance(v, str) else _redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def body_for_log(body: bytes | str | None) -> str:
    """A body as the traffic log keeps it: credentials tokens redacted, cut at OCPI_TRAFFIC_LOG_BODY_LIMIT."""
    if not body:
        return ""
    raw = body.encode() if isinstance(body, str) else body
    limit = settings.OCPI_TRAFFIC_LOG_BODY_LIMIT
    # Only what is kept is searched (a page of locations is 200 KB; the log keeps 4 KB of it): a token key is looked
    # for in the kept part plus the longest `"token":"<64 characters>"`, so a token cut at the limit is redacted too.
    if b'"token"' in raw[: limit + _TOKEN_TAIL]:
        try:
            raw = orjson.dumps(_redact(orjson.loads(raw)))
        except orjson.JSONDecodeError:
            raw = re.sub(rb'("token"\s*:\s*)"[^"]*("|$)', rb'\1"***"', raw)
    text = raw[: limit + 1].decode("utf-8", errors="replace")
    if "\x00" in text:  # PostgreSQL text cannot hold NUL: one such body would cost the whole batch of rows
        text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[:limit] + "…"


def _write(**fields: Any) -> None:
    if not settings.OCPI_TRAFFIC_LOG_ENABLED:
        return
    try:
        TrafficLog.objects.create(**fields)
    except Exception:  # the log must never break the exchange it records
        logger.exception("Could not write the traffic log")


# --- batched writes of the log (off the request path, and off a push batch's path) ---

_BATCH_ROWS = 200  # a flush starts early when this many rows wait
_INSERT_CHUNK = 500


def _flush_seconds() -> float:
    value = getattr(settings, "OCPI_TRAFFIC_LOG_FLUSH_SECONDS", None)
    if value is None:  # batched, but inline on an in-memory SQLite database (a connection of its own sees another)
        connection = connections[router.db_for_write(TrafficLog)]
        in_memory = connection.vendor == "sqlite" and connection.is_in_memory_db()  # type: ignore[attr-defined]
        return 0.0 if in_memory else 0.25
    return float(value)


@functools.cache
def _columns() -> tuple[Any, ...]:
    """The log's fields in the order a buffered row holds their values (every concrete field but the id); read once
    per process, not per request."""
    return tuple(f for f in TrafficLog._meta.concrete_fields if not f.primary_key)


class _Buffer:
    """Rows waiting to be written (tuples of column values, in `_columns()` order), and the daemon thread of this
    process that writes them."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.pid = 0
        self.thread: threading.Thread | None = None

    def add(self, row: tuple[Any, ...], delay: float) -> None:
        with self.lock:
            if self.pid != os.getpid():  # first row in this process (or a forked child: the parent writes its own)
                self.rows, self.pid = [], os.getpid()
                self.thread = threading.Thread(target=self._run, args=(delay,), name="traffic-log", daemon=True)
                self.thread.start()
            self.rows.append(row)
            full = len(self.rows) >= _BATCH_ROWS
        if full:
            self.wake.set()

    def _run(self, delay: float) -> None:
        while True:
            self.wake.wait(delay)
            self.wake.clear()
            try:
                self.flush()
            finally:
                close_old_connections()  # this thread's own connection: dropped when broken or too old

    def take(self) -> list[tuple[Any, ...]]:
        with self.lock:
            rows, self.rows = self.rows, []
        return rows

    def flush(self) -> int:
        rows = self.take()
        if not rows:
            return 0
        fields = _columns()
        connection = connections[router.db_for_write(TrafficLog)]
        try:
            if connection.vendor == "postgresql":
                # COPY: a third of the cost of a multi-row INSERT, for the database and for this process (no SQL
                # to build); the values are the columns' own (created_at is the time of the request)
                columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
                table = connection.ops.quote_name(TrafficLog._meta.db_table)
                with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                names = [f.attname for f in fields]
                instances = [TrafficLog(**dict(zip(names, row, strict=True))) for row in rows]
                # one transaction: one commit, and on SQLite a turn in the writers' queue like the requests' writes
                # (ocpi_core.db_backends.sqlite3), not a wait in SQLite's busy handler
                with transaction.atomic(using=connection.alias):
                    for start in range(0, len(instances), _INSERT_CHUNK):
                        # raw: created_at keeps the time of the request, not of the flush (no auto_now_add on insert)
                        TrafficLog._base_manager._insert(  # type: ignore[attr-defined]
                            instances[start : start + _INSERT_CHUNK], fields=fields, raw=True
                        )
        except Exception:  # the log must never break anything: these rows are lost, and said so
            logger.exception("Could not write the traffic log", extra={"rows": len(rows)})
            return 0
        return len(rows)


_buffer = _Buffer()


def traffic_log_flush() -> int:
    """Write the rows still waiting in this process now (tests, shutdown). Returns how many."""
    return _buffer.flush()


def _flush_at_shutdown(**_: Any) -> None:
    traffic_log_flush()


atexit.register(traffic_log_flush)
# a Celery pool process leaves by os._exit (no atexit): it writes what waits when it shuts down
worker_process_shutdown.connect(_flush_at_shutdown, weak=False, dispatch_uid="ocpi-traffic-log-flush")


def _write_batched(**fields: Any) -> None:
    """A row: inline when OCPI_TRAFFIC_LOG_FLUSH_SECONDS is 0, else handed to the writer thread."""
    delay = _flush_seconds()
    if delay <= 0:
        _write(**fields)
        return
    try:
        partner = fields.pop("partner", None)
        values = {"created_at": timezone.now(), "partner_id": partner.pk if partner is not None else None, **fields}
        _buffer.add(tuple(values[f.attname] if f.attname in values else f.get_default() for f in _columns()), delay)
    except Exception:
        logger.exception("Could not queue the traffic log")


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def traffic_log_inbound(
    request: HttpRequest, response: HttpResponse, *, request_body: bytes, duration_ms: float
) -> None:
    """Record one request a partner made to us."""
    if not settings.OCPI_TRAFFIC_LOG_ENABLED:
        return
    partner = getattr(request, "ocpi_partner", None)
    response_body = b"" if response.streaming else response.content
    _write_batched(
        partner=partner if isinstance(partner, Partner) else None,
        direction=TrafficLog.Direction.IN,
        method=request.method or "",
        url=request.get_full_path()[:2000],
        module=module_of_path(request.path_info),
        http_status=response.status_code,
        ocpi_status_code=_int_or_none(getattr(response, "ocpi_status_code", None)),
        duration_ms=round(duration_ms, 3),
        request_id=getattr(request, "ocpi_request_id", ""),
        correlation_id=getattr(request, "ocpi_correlation_id", ""),
        request_body=body_for_log(request_body),
        response_body=body_for_log(response_body),
    )


def traffic_log_outbound(
    *,
    partner: Partner | None,
    method: str,
    url: str,
    http_status: int | None,
    ocpi_status_code: int | None,
    duration_ms: float,
    request_id: str,
    correlation_id: str,
    request_body: bytes | None,
    response_body: bytes | None,
    error: str = "",
) -> None:
    """Record one request we made to a partner (written as inbound rows are: a push batch does not wait for it)."""
    if not settings.OCPI_TRAFFIC_LOG_ENABLED:
        return
    _write_batched(
        partner=partner if partner is not None and partner.pk else None,
        direction=TrafficLog.Direction.OUT,
        method=method,
        url=url[:2000],
        module=module_of_path(re.sub(r"^https?://[^/]+", "", url)),
        http_status=http_status,
        ocpi_status_code=_int_or_none(ocpi_status_code),
        duration_ms=round(duration_ms, 3),
        request_id=request_id,
        correlation_id=correlation_id,
        request_body=body_for_log(request_body),
        response_body=body_for_log(response_body),
        error=error[:2000],
    )
