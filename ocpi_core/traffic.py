"""The traffic log: every inbound and outbound OCPI request, with tokens redacted and bodies truncated."""

import logging
import re
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ocpi_core.constants import ModuleID
from ocpi_core.models import Partner, TrafficLog

logger = logging.getLogger(__name__)

_KNOWN_MODULES = frozenset({*ModuleID.values, "versions"})
_VERSION_RE = re.compile(r"^\d+(?:\.\d+)+$")
_REDACTED = "***"


def module_of_path(path: str) -> str:
    """`credentials`, `locations`, `versions` ... for an OCPI path (ours or a partner's); '' when unknown."""
    segments = [segment for segment in path.split("/") if segment]
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
    if b'"token"' in raw:
        try:
            raw = orjson.dumps(_redact(orjson.loads(raw)))
        except orjson.JSONDecodeError:
            raw = re.sub(rb'("token"\s*:\s*)"[^"]*"', rb'\1"***"', raw)
    limit = settings.OCPI_TRAFFIC_LOG_BODY_LIMIT
    text = raw[: limit + 1].decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "…"


def _write(**fields: Any) -> None:
    if not settings.OCPI_TRAFFIC_LOG_ENABLED:
        return
    try:
        TrafficLog.objects.create(**fields)
    except Exception:  # the log must never break the exchange it records
        logger.exception("Could not write the traffic log")


def traffic_log_inbound(
    request: HttpRequest, response: HttpResponse, *, request_body: bytes, duration_ms: float
) -> None:
    """Record one request a partner made to us."""
    partner = getattr(request, "ocpi_partner", None)
    response_body = b"" if response.streaming else response.content
    _write(
        partner=partner if isinstance(partner, Partner) else None,
        direction=TrafficLog.Direction.IN,
        method=request.method or "",
        url=request.get_full_path()[:2000],
        module=module_of_path(request.path_info),
        http_status=response.status_code,
        ocpi_status_code=getattr(response, "ocpi_status_code", None),
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
    """Record one request we made to a partner."""
    _write(
        partner=partner if partner is not None and partner.pk else None,
        direction=TrafficLog.Direction.OUT,
        method=method,
        url=url[:2000],
        module=module_of_path(re.sub(r"^https?://[^/]+", "", url)),
        http_status=http_status,
        ocpi_status_code=ocpi_status_code,
        duration_ms=round(duration_ms, 3),
        request_id=request_id,
        correlation_id=correlation_id,
        request_body=body_for_log(request_body),
        response_body=body_for_log(response_body),
        error=error[:2000],
    )
