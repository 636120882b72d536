"""CDRs interfaces (REFERENCE §8.2): CPO Sender (our own CDRs, scoped to the caller) and eMSP Receiver (partners'
CDRs: POST to the collection, GET at the Location URL we answer with; CDRs are immutable, so PUT, PATCH and DELETE
are answered 405)."""

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request

from cdrs.services import cdr_get_received, cdr_list_for_partner, cdr_receive
from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import SUCCESS_DESCRIPTION, envelope_schema, object_schema, ocpi_list, ocpi_request
from ocpi_core.authentication import request_auth
from ocpi_core.constants import ModuleID, Role
from ocpi_core.envelope import OcpiResponse, raw_data_response
from ocpi_core.exceptions import NotFound
from ocpi_core.pagination import paginate
from ocpi_core.registry import absolute_url
from ocpi_core.selectors import own_parties_for_request

_TAGS = ["OCPI CDRs"]


class CdrSenderListView(OcpiAPIView):
    """GET /ocpi/2.2.1/cpo/cdrs: our CDRs for the calling partner's tokens, paginated (stored JSON joined as is)."""

    ocpi_module = ModuleID.CDRS

    @ocpi_list(object_schema("CDR"), operation_id="ocpi_cpo_cdrs_list", tags=_TAGS)
    def get(self, request: Request) -> Any:
        parties = own_parties_for_request(routing=self.routing, role=Role.CPO)
        queryset = cdr_list_for_partner(
            partner=request_auth(request).partner, routing=self.routing, own_cpo_parties=parties
        )
        page = paginate(queryset.only("pk", "last_updated", "doc"), request.query_params, request.path)
        body = b"[" + b",".join(cdr.doc.encode() for cdr in page.objects) + b"]"
        return raw_data_response(body, headers=page.headers)


def cdr_location_url(pk: int) -> str:
    """The absolute URL of a received CDR on our side (the Location header of the POST answer)."""
    return absolute_url(reverse("ocpi:emsp-cdr", kwargs={"cdr_pk": str(pk)}))


_CREATED = OpenApiResponse(
    response=envelope_schema(None),
    description=SUCCESS_DESCRIPTION
    + " 201: stored; 200: this CDR was already stored (idempotent), or 2001: a different CDR is stored under this id.",
)
_LOCATION_HEADER = OpenApiParameter(
    "Location",
    str,
    OpenApiParameter.HEADER,
    response=[200, 201],
    description="Absolute URL of the stored CDR on this platform (GET it there); on every CDR stored or already "
    "stored (status_code 1000), not on an OCPI-layer error answered with HTTP 200 (2001)",
)


class CdrReceiverListView(OcpiAPIView):
    """POST /ocpi/2.2.1/emsp/cdrs: a CPO partner sends a CDR; answered 201 (200 when already stored) with Location."""

    ocpi_module = ModuleID.CDRS
    http_method_names = ["post"]

    @extend_schema(
        operation_id="ocpi_emsp_cdrs_post",
        tags=_TAGS,
        request=ocpi_request("CDR"),
        parameters=[_LOCATION_HEADER],
        responses={
            200: _CREATED,
            201: _CREATED,
        },
    )
    def post(self, request: Request) -> OcpiResponse:
        parties = own_parties_for_request(routing=self.routing, role=Role.EMSP)
        result = cdr_receive(partner=request_auth(request).partner, data=request.data, own_emsp_parties=parties)
        return OcpiResponse(
            http_status=201 if result.created else 200, headers={"Location": cdr_location_url(result.cdr.pk)}
        )


class CdrReceiverObjectView(OcpiAPIView):
    """GET /ocpi/2.2.1/emsp/cdrs/{cdr_pk}: a CDR the calling partner sent us (the URL of our Location header)."""

    ocpi_module = ModuleID.CDRS
    http_method_names = ["get", "head"]  # immutable: PUT, PATCH, DELETE are 405 envelopes

    @extend_schema(
        operation_id="ocpi_emsp_cdrs_get",
        tags=_TAGS,
        responses={200: OpenApiResponse(envelope_schema(object_schema("CDR")), description=SUCCESS_DESCRIPTION)},
    )
    def get(self, request: Request, cdr_pk: str) -> Any:
        if not (cdr_pk.isascii() and cdr_pk.isdigit()) or len(cdr_pk) > 18:
            raise NotFound("Unknown CDR")
        cdr = cdr_get_received(partner=request_auth(request).partner, pk=int(cdr_pk))
        return raw_data_response(cdr.doc.encode())
