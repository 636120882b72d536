"""The OCPI response envelope and DateTime handling (REFERENCE §0.1, §2.3)."""

import re
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from django.http import HttpResponse
from django.utils import timezone

from ocpi_core.constants import StatusCode

_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z)?$",
    re.ASCII,  # \d is [0-9] only: Python's int() would read fullwidth or Arabic-Indic digits too
)


def parse_datetime(value: str) -> datetime:
    """Parse an OCPI DateTime: UTC, with or without `Z`, optional fraction; numeric offsets are refused.

    Raises ValueError on anything else (the spec says `+00:00` is not the same as UTC).
    """
    if not isinstance(value, str) or len(value) > 30:  # up to nanoseconds (Java's Instant), then `Z`: 30 characters
        raise ValueError("not an OCPI DateTime")
    match = _DATETIME_RE.fullmatch(value)  # `$` alone would let a trailing newline through
    if match is None:
        raise ValueError("not an OCPI DateTime (expected YYYY-MM-DDThh:mm:ss[.fff][Z], UTC)")
    year, month, day, hour, minute, second, fraction, _z = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC)


def format_datetime(value: datetime) -> str:
    """Render a DateTime the way we always send it: UTC, `Z`, milliseconds only when there are some.

    isoformat, not strftime: glibc's `%Y` drops the leading zeros of a year before 1000, so 0001-01-01 (a valid
    OCPI DateTime a partner may send) was rendered "1-01-01T00:00:00Z", which no partner can read.
    """
    value = value.astimezone(UTC).replace(tzinfo=None)
    if value.microsecond >= 1000:  # below a millisecond nothing is shown: `.000Z` would not read back the same
        return value.isoformat(timespec="milliseconds") + "Z"  # truncated, not rounded: never past 23:59:59.999
    return value.isoformat(timespec="seconds") + "Z"


def format_datetime_up(value: datetime) -> str:
    """`format_datetime` of `value` rounded up to the millisecond: a stamp of our own that fits the spec's
    string(25) (microseconds, `…:09.123456Z`, are 27 characters) and is never earlier than `value`, so that an own
    change stamped "now, never older than what is stored" still supersedes what is stored."""
    value = value.astimezone(UTC)
    if value.microsecond % 1000:
        with suppress(OverflowError):  # (the last millisecond of 9999-12-31: as close as an OCPI DateTime gets)
            value += timedelta(microseconds=1000 - value.microsecond % 1000)
    return format_datetime(value)


def own_stamp(stored: datetime | None, at: datetime | None = None) -> datetime:
    """When an own change happens: `at` (or now), never older than `stored`, the last_updated it replaces (an own
    change stamped older than what is stored would be ignored). Send it with `format_datetime_up`."""
    stamp = at or timezone.now()
    return stored if stored is not None and stored > stamp else stamp


_stamp: tuple[int, str] = (-1, "")


def now_timestamp() -> str:
    """The envelope's `timestamp`: now, in UTC, second precision. Formatted once a second, not on every response."""
    global _stamp
    second = int(time.time())
    if second != _stamp[0]:
        _stamp = (second, format_datetime(datetime.fromtimestamp(second, UTC)))
    return _stamp[1]


def _default(value: Any) -> Any:
    """orjson fallback: OCPI DateTimes and Decimals (as JSON numbers, never floats in our own arithmetic)."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Encode JSON with orjson, DateTimes in the OCPI form."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


_MISSING = object()


def envelope(
    data: Any = _MISSING,
    status_code: int = StatusCode.SUCCESS,
    status_message: str | None = None,
) -> dict[str, Any]:
    """The response body as a dict. `data` is omitted when the spec defines no payload."""
    body: dict[str, Any] = {}
    if data is not _MISSING:
        body["data"] = data
    body["status_code"] = int(status_code)
    if status_message:
        body["status_message"] = status_message
    body["timestamp"] = now_timestamp()
    return body


class OcpiResponse(HttpResponse):
    """An HttpResponse carrying an OCPI envelope; `ocpi_status_code` is read by the traffic log."""

    def __init__(
        self,
        data: Any = _MISSING,
        *,
        status_code: int = StatusCode.SUCCESS,
        status_message: str | None = None,
        http_status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            dumps(envelope(data, status_code, status_message)),
            content_type="application/json",
            status=http_status,
            headers=headers,
        )
        self.ocpi_status_code = int(status_code)


def raw_data_response(
    data_json: bytes, *, http_status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    """Envelope around `data` that is already JSON text (precomputed documents): joined, never re-encoded."""
    body = b'{"data":' + data_json + b',"status_code":1000,"timestamp":"' + now_timestamp().encode() + b'"}'
    response = HttpResponse(body, content_type="application/json", status=http_status, headers=headers)
    response.ocpi_status_code = StatusCode.SUCCESS  # type: ignore[attr-defined]
    return response
