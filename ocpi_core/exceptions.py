"""One exception family for protocol failures and the one handler that renders them as OCPI envelopes."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ocpi_core.constants import StatusCode
from ocpi_core.envelope import OcpiResponse

logger = logging.getLogger(__name__)


class OcpiError(Exception):
    """A protocol failure; `ocpi_exception_handler` renders it as the OCPI envelope.

    HTTP 200 unless a subclass says otherwise: a request that is valid JSON, authenticated and authorized has reached
    the OCPI layer, and "to such a request, an HTTP error status code MUST NOT be returned" (status_codes, 2.2.1
    errata); its error is the OCPI status code in the envelope (the spec's own example of 2001 is a PATCH without
    `last_updated`). HTTP errors stay for what fails before that layer (400 invalid JSON, 401, 405, 413, 415) and for
    objects that do not exist (404)."""

    status_code: int = StatusCode.CLIENT_ERROR
    http_status: int = 200
    default_message = "Client error"

    def __init__(self, message: str | None = None, *, http_status: int | None = None, data: Any = None) -> None:
        self.message = message or self.default_message
        if http_status is not None:
            self.http_status = http_status
        self.data = data
        super().__init__(self.message)


class InvalidParameters(OcpiError):
    status_code = StatusCode.INVALID_PARAMETERS
    default_message = "Invalid or missing parameters"


class NotEnoughInformation(OcpiError):
    status_code = StatusCode.NOT_ENOUGH_INFORMATION
    default_message = "Not enough information"


class UnknownLocation(OcpiError):
    status_code, http_status = StatusCode.UNKNOWN_LOCATION, 404
    default_message = "Unknown location"


class UnknownToken(OcpiError):
    status_code, http_status = StatusCode.UNKNOWN_TOKEN, 404
    default_message = "Unknown token"


class NotFound(OcpiError):
    status_code, http_status = StatusCode.CLIENT_ERROR, 404
    default_message = "Not found"


class Unauthorized(OcpiError):
    status_code, http_status = StatusCode.CLIENT_ERROR, 401
    default_message = "Unauthorized"


class MethodNotAllowed(OcpiError):
    status_code, http_status = StatusCode.CLIENT_ERROR, 405
    default_message = "Method not allowed"


class PayloadTooLarge(OcpiError):
    status_code, http_status = StatusCode.CLIENT_ERROR, 413
    default_message = "Request body too large"


class ServerError(OcpiError):
    status_code, http_status = StatusCode.SERVER_ERROR, 500
    default_message = "Internal server error"


class UnableToUseClientApi(OcpiError):
    """3001: we could not use the partner's API (registration callbacks failed)."""

    status_code, http_status = StatusCode.UNABLE_TO_USE_CLIENT_API, 200
    default_message = "Unable to use the client's API"


class UnsupportedVersion(OcpiError):
    status_code, http_status = StatusCode.UNSUPPORTED_VERSION, 200
    default_message = "No mutually supported OCPI version"


class NoMatchingEndpoints(OcpiError):
    status_code, http_status = StatusCode.NO_MATCHING_ENDPOINTS, 200
    default_message = "No matching endpoints"


def _validation_message(detail: Any, prefix: str = "") -> list[str]:
    """Flatten DRF validation details into `field.path: message` strings."""
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            path = key if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                path = prefix
            out.extend(_validation_message(value, path))
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                out.extend(_validation_message(value, f"{prefix}[{index}]"))
            else:
                out.extend(_validation_message(value, prefix))
        return out
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def ocpi_error_response(exc: Exception) -> OcpiResponse:
    """Map any exception to the envelope with the right HTTP status and OCPI status code (STYLE.md §6)."""
    headers: dict[str, str] = {}
    if isinstance(exc, OcpiError):
        kwargs: dict[str, Any] = {"data": exc.data} if exc.data is not None else {}
        if exc.http_status == 401:
            headers["WWW-Authenticate"] = "Token"
        return OcpiResponse(
            status_code=exc.status_code,
            status_message=exc.message,
            http_status=exc.http_status,
            headers=headers,
            **kwargs,
        )
    if isinstance(exc, drf_exceptions.ValidationError):
        message = "; ".join(_validation_message(exc.detail)) or "Invalid parameters"
        return OcpiResponse(status_code=StatusCode.INVALID_PARAMETERS, status_message=message, http_status=200)
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return OcpiResponse(
            status_code=StatusCode.CLIENT_ERROR,
            status_message=str(exc.detail),
            http_status=401,
            headers={"WWW-Authenticate": "Token"},
        )
    if isinstance(exc, drf_exceptions.PermissionDenied | PermissionDenied):
        message = str(getattr(exc, "detail", "")) or "Forbidden"
        return OcpiResponse(status_code=StatusCode.CLIENT_ERROR, status_message=message, http_status=403)
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return OcpiResponse(status_code=StatusCode.CLIENT_ERROR, status_message=str(exc.detail), http_status=405)
    if isinstance(exc, drf_exceptions.ParseError):
        return OcpiResponse(
            status_code=StatusCode.INVALID_PARAMETERS, status_message=f"Invalid JSON: {exc.detail}", http_status=400
        )
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return OcpiResponse(status_code=StatusCode.INVALID_PARAMETERS, status_message=str(exc.detail), http_status=415)
    if isinstance(exc, RequestDataTooBig):
        return OcpiResponse(
            status_code=StatusCode.CLIENT_ERROR, status_message="Request body too large", http_status=413
        )
    if isinstance(exc, Http404 | drf_exceptions.NotFound):
        return OcpiResponse(status_code=StatusCode.CLIENT_ERROR, status_message="Not found", http_status=404)
    if isinstance(exc, drf_exceptions.Throttled):
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
        return OcpiResponse(
            status_code=StatusCode.CLIENT_ERROR, status_message=str(exc.detail), http_status=429, headers=headers
        )
    if isinstance(exc, drf_exceptions.APIException):
        return OcpiResponse(
            status_code=StatusCode.CLIENT_ERROR, status_message=str(exc.detail), http_status=exc.status_code
        )
    logger.error("Unexpected error while handling an OCPI request", exc_info=exc)
    return OcpiResponse(status_code=StatusCode.SERVER_ERROR, status_message="Internal server error", http_status=500)


def ocpi_exception_handler(exc: Exception, context: dict[str, Any]) -> OcpiResponse:
    """DRF exception handler of every OCPI view."""
    return ocpi_error_response(exc)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Default DRF handler (platform API): DRF's own, but OcpiErrors raised by services become 400s with a message."""
    if isinstance(exc, OcpiError):
        return Response(
            {"detail": exc.message, "ocpi_status_code": exc.status_code},
            status=exc.http_status if exc.http_status >= 400 else 400,
        )
    return drf_exception_handler(exc, context)
