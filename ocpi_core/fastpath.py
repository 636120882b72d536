"""The hot OCPI requests, served without DRF's dispatch and Django's URL resolver.

A roaming platform's traffic is dominated by a few requests: partners paging through our locations, fetching one
location, and CPOs PATCHing EVSE statuses into our receiver. For these, OcpiMiddleware first offers the request to
the handlers registered here (by the module apps, in their AppConfig.ready). A handler applies the same rules and
gives the same answers as the DRF view of the same URL: the same authentication (`authenticate_request`,
`require_registered`), the same routing headers, the same envelope and pagination headers, the same service calls;
only the dispatch is leaner and the reads are hand-written statements (`ocpi_core.db.fast_fetch`: prepared on
PostgreSQL, through Django's cursor on SQLite). The tests run requests both ways and compare the answers, on both
databases.

Everything else, and every request a handler declines (it returns None: another depth, a body that is not JSON, a
database other than PostgreSQL and SQLite, OCPI_FAST_PATH=false), takes the normal path through DRF. OCPI errors
raised by a handler get the envelope and headers DRF's exception handler would give.
"""

import functools
import re
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from ocpi_core.authentication import PartnerAuth, authenticate_request, require_registered
from ocpi_core.exceptions import OcpiError, ocpi_error_response
from ocpi_core.hot import assert_addressed_here, response_routing_headers
from ocpi_core.routing import Routing, routing_from_request
from ocpi_core.validation import body_problem

Handler = Callable[..., HttpResponse | None]

_ROUTES: list[tuple[str, re.Pattern[str], Handler, str]] = []


def fast_route(method: str, pattern: str, *, allow: str) -> Callable[[Handler], Handler]:
    """Register `handler(request, **url_groups)` for `method` on the full path `pattern` (a regex on path_info).
    `allow` is the Allow header the DRF view of the same URL sends (its methods)."""

    def register(handler: Handler) -> Handler:
        compiled = re.compile(pattern)
        if not any(route[1].pattern == pattern and route[0] == method for route in _ROUTES):
            _ROUTES.append((method, compiled, handler, allow))
        return handler

    return register


def _enabled() -> bool:
    return bool(getattr(settings, "OCPI_FAST_PATH", True)) and connections["default"].vendor in ("postgresql", "sqlite")


@functools.cache
def _common_headers() -> dict[str, str]:
    """What the middleware the fast path skips (security, X-Frame-Options) would add to an API answer (worked out
    once: settings do not change in a running process, except in tests, which signal it)."""
    headers = {"X-Frame-Options": getattr(settings, "X_FRAME_OPTIONS", "DENY")}
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers["X-Content-Type-Options"] = "nosniff"
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers["Referrer-Policy"] = policy if isinstance(policy, str) else ",".join(policy)
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
    return headers


@receiver(setting_changed)
def _settings_changed(**_: Any) -> None:
    _common_headers.cache_clear()


def fast_dispatch(request: HttpRequest) -> HttpResponse | None:
    """The answer of a registered hot-path handler, or None when no handler takes the request."""
    if not _ROUTES or not _enabled():
        return None
    if settings.SECURE_SSL_REDIRECT and not request.is_secure():
        return None  # SecurityMiddleware redirects it
    method, path = request.method, request.path_info
    for route_method, pattern, handler, allow in _ROUTES:
        if route_method != method:
            continue
        match = pattern.match(path)
        if match is None:
            continue
        try:
            response = handler(request, **match.groupdict())
        except OcpiError as exc:  # as DRF's exception handler
            response = ocpi_error_response(exc)
        if response is None:
            return None
        routing = getattr(request, "ocpi_routing", None)
        if routing is not None:  # as OcpiAPIView.finalize_response, once the headers were read
            for name, value in response_routing_headers(request, routing).items():
                response[name] = value
        for name, value in _common_headers().items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Allow", allow)
        response.headers.setdefault("Content-Length", str(len(response.content)))
        return response
    return None


def fast_partner_request(request: HttpRequest) -> tuple[PartnerAuth, Routing]:
    """Authenticate a functional module's request as the DRF views do (token, then registered partner, then the
    routing headers: a 401 wins over a 2001), and return who called and its routing."""
    auth = authenticate_request(request)
    require_registered(auth)
    routing = routing_from_request(request)
    request.ocpi_routing = routing  # type: ignore[attr-defined]  # errors from here on carry the routing headers
    assert_addressed_here(routing)
    return auth, routing


def fast_json_body(request: HttpRequest) -> tuple[bool, Any]:
    """(True, the parsed body) when the fast path can read it as DRF would (JSON, or no Content-Type: older peers
    omit it; an empty body is {}); (False, None) for anything else, which the handler then leaves to DRF and its
    error answers (415, 2001 Invalid JSON)."""
    if request.content_type not in ("", "application/json"):
        return False, None
    raw = request.body
    if not raw:
        return True, {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False, None
    if body_problem(raw, data) is not None:  # DRF's parser answers it (2001)
        return False, None
    return True, data


def routes() -> list[tuple[str, str]]:
    """(method, pattern) of every registered hot path (for tests and diagnostics)."""
    return [(method, pattern.pattern) for method, pattern, _, _ in _ROUTES]
