"""The platform API root (/api/) for the operator's own systems; JWT-authenticated staff users."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.status import HTTP_409_CONFLICT
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from ocpi_core.models import Partner
from ocpi_core.registry import versions_url


class Conflict(APIException):
    """409 of the platform API: a write older than what is stored, or one that clashes with it."""

    status_code = HTTP_409_CONFLICT
    default_detail = "Conflict"
    default_code = "conflict"


def json_text_response(
    text: str | bytes, http_status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    """JSON text as stored, sent without re-encoding (amounts and prices keep their digits)."""
    return HttpResponse(text, status=http_status, content_type="application/json", headers=headers)


PLATFORM_PREFIX = "/api/"
AUTH_ERRORS = {
    401: OpenApiResponse(description="No, an invalid or an expired JWT"),
    403: OpenApiResponse(description="Not a staff user"),
}


def demo_path_parameter(name: str, description: str, demo: str) -> OpenApiParameter:
    """A path parameter whose example (what Swagger UI's "Try it out" fills in) names an object of the demo data
    (`ocpi_demo`, loaded by `scripts/run`), so the documented operations work as shown on a fresh start."""
    return OpenApiParameter(
        name, str, OpenApiParameter.PATH, description=description, examples=[OpenApiExample("Demo", value=demo)]
    )


@csrf_exempt  # callers authenticate by JWT, never by cookie: a POST gets the 404, not a CSRF 403
def platform_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any URL under /api/ that matches no resource: a JSON 404 like DRF's, whatever the method (never HTML)."""
    return JsonResponse({"detail": f"No platform API resource at {request.path}"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a JSON 500 under /api/ (the failure is logged by Django as usual); Django's page elsewhere."""
    if request.path_info.startswith(PLATFORM_PREFIX):
        return JsonResponse({"detail": "Internal server error"}, status=500)
    return defaults.server_error(request)


class PlatformRootView(APIView):
    """Entry point of the platform API: what this deployment is and where its resources are."""

    @extend_schema(
        operation_id="platform_root",
        summary="What this deployment is: its OCPI versions URL, partners by status, links to the docs",
        tags=["Platform API"],
        responses={
            200: inline_serializer(
                "PlatformRoot",
                {
                    "ocpi_versions_url": serializers.URLField(),
                    "partners": serializers.DictField(child=serializers.IntegerField()),
                    "links": serializers.DictField(child=serializers.CharField()),
                },
            ),
            **AUTH_ERRORS,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        counts = {status: 0 for status in Partner.Status.values}
        for status in Partner.objects.values_list("status", flat=True):
            counts[status] += 1
        return Response(
            {
                "ocpi_versions_url": versions_url(),
                "partners": counts,
                "links": {
                    "schema": reverse("schema", request=request),
                    "docs": reverse("swagger-ui", request=request),
                    "token": reverse("jwt-obtain", request=request),
                },
            }
        )


AUTH_TAG = "Platform API: authentication"
_BAD_CREDENTIALS = OpenApiResponse(description='Wrong username or password, or an inactive account: `{"detail": ...}`')


@extend_schema_view(
    post=extend_schema(
        operation_id="platform_token_obtain",
        summary="Obtain a JWT pair (access and refresh) for a staff user",
        description="Send the access token as `Authorization: Bearer <access>`; in these docs, paste it into "
        "**Authorize** (jwtAuth). The access token lives "
        "PLATFORM_API_TOKEN_MINUTES (default 30) minutes; renew it with the refresh token at /api/token/refresh/. "
        "Any active account gets a pair, but only staff users may use the platform API (others: 403).",
        tags=[AUTH_TAG],
        examples=[
            OpenApiExample(
                "Admin of scripts/run",
                value={"username": "admin", "password": "the password scripts/run printed"},
                request_only=True,
            )
        ],
        responses={200: TokenObtainPairView.serializer_class, 401: _BAD_CREDENTIALS},
    )
)
class PlatformTokenObtainView(TokenObtainPairView):
    """POST /api/token/: username and password in, an access and a refresh JWT out."""


@extend_schema_view(
    post=extend_schema(
        operation_id="platform_token_refresh",
        summary="Renew the access token with the refresh token",
        tags=[AUTH_TAG],
        examples=[
            OpenApiExample("Refresh", value={"refresh": "the refresh token /api/token/ answered"}, request_only=True)
        ],
        responses={200: TokenRefreshView.serializer_class, 401: OpenApiResponse(description="Invalid or expired")},
    )
)
class PlatformTokenRefreshView(TokenRefreshView):
    """POST /api/token/refresh/: a refresh JWT in, a new access JWT out."""
