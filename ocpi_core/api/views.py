"""Versions, version details and credentials (REFERENCE §4-5), and the envelope for unknown URLs under /ocpi/."""

from typing import Any

from django.http import HttpRequest
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from ocpi_core import services
from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import (
    CREDENTIALS_REQUEST,
    credentials_response,
    empty_response,
    version_details_response,
    versions_response,
)
from ocpi_core.authentication import AnyPartnerToken, request_auth
from ocpi_core.constants import ModuleID, StatusCode
from ocpi_core.envelope import OcpiResponse
from ocpi_core.registry import version_details, version_list


class VersionsView(OcpiAPIView):
    """GET /ocpi/versions: the versions we support (token A accepted)."""

    permission_classes = [AnyPartnerToken]
    ocpi_module = "versions"

    @extend_schema(
        operation_id="ocpi_versions",
        summary="Versions this platform supports",
        tags=["OCPI versions"],
        responses=versions_response,
    )
    def get(self, request: Request) -> OcpiResponse:
        return OcpiResponse(version_list())


class VersionDetailsView(OcpiAPIView):
    """GET /ocpi/2.2.1: every endpoint we serve in 2.2.1, by module and interface role (token A accepted)."""

    permission_classes = [AnyPartnerToken]
    ocpi_module = "versions"

    @extend_schema(
        operation_id="ocpi_version_details",
        summary="Endpoints of OCPI 2.2.1 on this platform",
        tags=["OCPI versions"],
        responses=version_details_response,
    )
    def get(self, request: Request) -> OcpiResponse:
        return OcpiResponse(version_details())


class CredentialsView(OcpiAPIView):
    """/ocpi/2.2.1/credentials: GET, POST (register), PUT (update/rotate), DELETE (unregister)."""

    permission_classes = [AnyPartnerToken]
    ocpi_module = ModuleID.CREDENTIALS

    @extend_schema(
        operation_id="ocpi_credentials_get",
        summary="Our credentials, carrying the token the caller presented",
        tags=["OCPI credentials"],
        responses=credentials_response,
    )
    def get(self, request: Request) -> OcpiResponse:
        auth = request_auth(request)
        return OcpiResponse(services.our_credentials(token=auth.value))

    @extend_schema(
        operation_id="ocpi_credentials_register",
        summary="Register with token A: we call the given versions URL back, then answer with token C",
        tags=["OCPI credentials"],
        request=CREDENTIALS_REQUEST,
        responses=credentials_response,
    )
    def post(self, request: Request) -> OcpiResponse:
        data = services.credentials_register_inbound(auth=request_auth(request), data=request.data)
        return OcpiResponse(data)

    @extend_schema(
        operation_id="ocpi_credentials_update",
        summary="Update credentials (registered partners): new endpoints are read, a new token C is issued",
        tags=["OCPI credentials"],
        request=CREDENTIALS_REQUEST,
        responses=credentials_response,
    )
    def put(self, request: Request) -> OcpiResponse:
        data = services.credentials_update_inbound(auth=request_auth(request), data=request.data)
        return OcpiResponse(data)

    @extend_schema(
        operation_id="ocpi_credentials_unregister",
        summary="Unregister: every token of the partner stops working",
        tags=["OCPI credentials"],
        responses=empty_response,
    )
    def delete(self, request: Request) -> OcpiResponse:
        services.credentials_delete_inbound(auth=request_auth(request))
        return OcpiResponse()


@csrf_exempt  # partners authenticate by token, never by cookie; a POST must get the 404, not a CSRF 403
def ocpi_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> OcpiResponse:
    """Any URL under /ocpi/ that matches no endpoint: a 404 envelope, whatever the method."""
    return OcpiResponse(status_code=StatusCode.CLIENT_ERROR, status_message="Unknown endpoint", http_status=404)
