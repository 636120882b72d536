"""Middleware: request/correlation ids everywhere; under /ocpi/ also the body-size guard, the traffic log and the
guarantee that every answer is an OCPI envelope (never HTML, never a stack trace)."""

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware

from ocpi_core.constants import MESSAGE_ID_MAX, StatusCode
from ocpi_core.envelope import OcpiResponse
from ocpi_core.exceptions import InvalidParameters, ocpi_error_response
from ocpi_core.fastpath import fast_dispatch
from ocpi_core.logging import correlation_id_var, request_id_var
from ocpi_core.metrics import observe_inbound
from ocpi_core.traffic import traffic_log_inbound

logger = logging.getLogger(__name__)

OCPI_PREFIX = "/ocpi/"

_STATUS_MESSAGES = {
    400: (StatusCode.INVALID_PARAMETERS, "Bad request"),
    401: (StatusCode.CLIENT_ERROR, "Unauthorized"),
    403: (StatusCode.CLIENT_ERROR, "Forbidden"),
    404: (StatusCode.CLIENT_ERROR, "Not found"),
    405: (StatusCode.CLIENT_ERROR, "Method not allowed"),
    413: (StatusCode.CLIENT_ERROR, "Request body too large"),
}


def _incoming_id(request: HttpRequest, meta_key: str) -> str:
    value = request.META.get(meta_key, "").strip()  # META, not request.headers: that builds a dict of every header
    if value and len(value) <= MESSAGE_ID_MAX and value.isascii() and value.isprintable():
        return value
    return str(uuid.uuid4())


def _as_envelope(response: HttpResponse) -> HttpResponse:
    """Replace a non-envelope answer (Django's HTML 404/500, a redirect ...) by the envelope with its status."""
    if hasattr(response, "ocpi_status_code") or 200 <= response.status_code < 300:
        return response
    status = response.status_code
    if status >= 500:
        code, message = StatusCode.SERVER_ERROR, "Internal server error"
    else:
        code, message = _STATUS_MESSAGES.get(status, (StatusCode.CLIENT_ERROR, "Client error"))
    http_status = status if status >= 400 else 404  # a redirect under /ocpi/ means no such endpoint
    return OcpiResponse(status_code=code, status_message=message, http_status=http_status)


class OcpiMiddleware:
    """Outermost middleware (see settings.MIDDLEWARE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _incoming_id(request, "HTTP_X_REQUEST_ID")
        correlation_id = _incoming_id(request, "HTTP_X_CORRELATION_ID")
        request.ocpi_request_id = request_id  # type: ignore[attr-defined]
        request.ocpi_correlation_id = correlation_id  # type: ignore[attr-defined]
        request_token = request_id_var.set(request_id)
        correlation_token = correlation_id_var.set(correlation_id)
        try:
            if request.path_info.startswith(OCPI_PREFIX) or request.path_info == OCPI_PREFIX.rstrip("/"):
                response = self._ocpi(request)
            else:
                response = self.get_response(request)
            response["X-Request-ID"] = request_id
            response["X-Correlation-ID"] = correlation_id
            return response
        finally:
            request_id_var.reset(request_token)
            correlation_id_var.reset(correlation_token)

    def _ocpi(self, request: HttpRequest) -> HttpResponse:
        from django.conf import settings

        started = time.perf_counter()
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.OCPI_MAX_BODY_SIZE:
            response: HttpResponse = OcpiResponse(
                status_code=StatusCode.CLIENT_ERROR,
                status_message=f"Request body too large (limit {settings.OCPI_MAX_BODY_SIZE} bytes)",
                http_status=413,
            )
            request_body = b""
        else:
            try:
                if "\x00" in request.path_info:  # %00: no OCPI id holds it, and no database lookup may see it
                    raise InvalidParameters("URL: a NUL character (%00) is not allowed", http_status=400)
                request_body = request.body  # read once, so the traffic log can keep it after the view parsed it
                fast = fast_dispatch(request)  # the hot requests, without DRF (ocpi_core.fastpath)
                response = self.get_response(request) if fast is None else fast
            except Exception as exc:
                request_body = b""
                response = ocpi_error_response(exc)
            response = _as_envelope(response)
        duration_ms = (time.perf_counter() - started) * 1000
        observe_inbound(request, response, duration_ms / 1000)
        traffic_log_inbound(request, response, request_body=request_body, duration_ms=duration_ms)
        return response


def _backoffice_only(middleware: type) -> type:
    """A copy of a Django middleware that steps aside under /ocpi/, where partners authenticate by token."""

    class BackOfficeOnly(middleware):  # type: ignore[misc, valid-type]
        def __call__(self, request: HttpRequest) -> HttpResponse:
            if request.path_info.startswith(OCPI_PREFIX):
                return self.get_response(request)
            return super().__call__(request)

        def process_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse | None:
            # Django calls process_view hooks directly, outside __call__.
            parent = getattr(super(), "process_view", None)
            if parent is None or request.path_info.startswith(OCPI_PREFIX):
                return None
            return parent(request, *args, **kwargs)

    BackOfficeOnly.__name__ = BackOfficeOnly.__qualname__ = middleware.__name__
    return BackOfficeOnly


# Sessions, auth, messages and CSRF cost 19-28 % of a small OCPI request (PERFORMANCE.md §5)
# and do nothing for partners.
SessionMiddleware = _backoffice_only(DjangoSessionMiddleware)
AuthenticationMiddleware = _backoffice_only(DjangoAuthenticationMiddleware)
MessageMiddleware = _backoffice_only(DjangoMessageMiddleware)
CsrfViewMiddleware = _backoffice_only(DjangoCsrfViewMiddleware)
