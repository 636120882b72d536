"""HubClientInfo Receiver interface (REFERENCE §13.1): GET and PUT of one party's ClientInfo, by the hub."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request

from hubclientinfo.services import clientinfo_get, clientinfo_put, clientinfo_render
from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import object_schema, ocpi_request, ocpi_responses
from ocpi_core.authentication import request_auth
from ocpi_core.constants import ModuleID
from ocpi_core.envelope import OcpiResponse

_TAGS = ["OCPI hubclientinfo"]
_PATH = [
    OpenApiParameter("country_code", str, OpenApiParameter.PATH, description="Country code of the party (CiString(2))"),
    OpenApiParameter("party_id", str, OpenApiParameter.PATH, description="Party id of the party (CiString(3))"),
]


class ClientInfoReceiverView(OcpiAPIView):
    """/ocpi/2.2.1/hubclientinfo/{country_code}/{party_id}: GET, PUT (no POST, PATCH, DELETE: 405)."""

    ocpi_module = ModuleID.HUBCLIENTINFO
    http_method_names = ["get", "put", "head"]

    @extend_schema(
        operation_id="ocpi_hubclientinfo_get",
        tags=_TAGS,
        parameters=_PATH,
        responses=ocpi_responses(object_schema("ClientInfo")),
    )
    def get(self, request: Request, country_code: str, party_id: str) -> OcpiResponse:
        found = clientinfo_get(partner=request_auth(request).partner, country_code=country_code, party_id=party_id)
        return OcpiResponse(clientinfo_render(found))

    @extend_schema(
        operation_id="ocpi_hubclientinfo_put",
        tags=_TAGS,
        parameters=_PATH,
        request=ocpi_request("ClientInfo"),
        responses=ocpi_responses(None, created=True),
    )
    def put(self, request: Request, country_code: str, party_id: str) -> OcpiResponse:
        result = clientinfo_put(
            partner=request_auth(request).partner, country_code=country_code, party_id=party_id, data=request.data
        )
        return OcpiResponse(http_status=201 if result.created else 200)
