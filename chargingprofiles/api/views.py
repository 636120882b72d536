"""ChargingProfiles interfaces: CPO Receiver (REFERENCE §12.1) and the eMSP/SCSP Sender side (§12.2)."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request

from chargingprofiles.models import Kind
from chargingprofiles.services import (
    active_profile_receive,
    chargingprofile_receive,
    chargingprofile_response_render,
    chargingprofile_result_receive,
)
from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import object_schema, ocpi_request, ocpi_responses
from ocpi_core.authentication import request_auth
from ocpi_core.constants import ModuleID
from ocpi_core.envelope import OcpiResponse
from ocpi_core.exceptions import InvalidParameters

_TAGS = ["OCPI chargingprofiles"]
_SESSION = OpenApiParameter("session_id", str, OpenApiParameter.PATH, description="Session id (CiString(36))")
_RESPONSE_URL = OpenApiParameter(
    "response_url",
    {"type": "string", "format": "uri", "maxLength": 255},
    required=True,
    description="Where the asynchronous result is POSTed",
)
_DURATION = OpenApiParameter(
    "duration", {"type": "integer", "minimum": 0}, required=True, description="Length of the profile asked for (s)"
)
_RESPONSE = ocpi_responses(object_schema("ChargingProfileResponse"))


class ChargingProfileReceiverView(OcpiAPIView):
    """/ocpi/2.2.1/cpo/chargingprofiles/{session_id}: GET (active profile), PUT (set), DELETE (clear)."""

    ocpi_module = ModuleID.CHARGINGPROFILES
    http_method_names = ["get", "put", "delete", "head"]

    def _answer(self, request: Request, session_id: str, kind: str, **fields: Any) -> OcpiResponse:
        stored = chargingprofile_receive(
            partner=request_auth(request).partner, routing=self.routing, session_id=session_id, kind=kind, **fields
        )
        return OcpiResponse(chargingprofile_response_render(stored))

    @extend_schema(
        operation_id="ocpi_cpo_chargingprofiles_get",
        tags=_TAGS,
        parameters=[_SESSION, _DURATION, _RESPONSE_URL],
        responses=_RESPONSE,
    )
    def get(self, request: Request, session_id: str) -> OcpiResponse:
        params = request.query_params
        return self._answer(
            request,
            session_id,
            Kind.ACTIVE,
            duration=params.get("duration"),
            response_url=params.get("response_url"),
        )

    @extend_schema(
        operation_id="ocpi_cpo_chargingprofiles_put",
        tags=_TAGS,
        parameters=[_SESSION],
        request=ocpi_request("SetChargingProfile"),
        responses=_RESPONSE,
    )
    def put(self, request: Request, session_id: str) -> OcpiResponse:
        body = request.data
        if not isinstance(body, dict):
            raise InvalidParameters("body: must be a JSON object (SetChargingProfile)")
        if body.get("charging_profile") is None:
            raise InvalidParameters("charging_profile: is required")
        return self._answer(
            request,
            session_id,
            Kind.SET,
            charging_profile=body["charging_profile"],
            response_url=body.get("response_url"),
        )

    @extend_schema(
        operation_id="ocpi_cpo_chargingprofiles_delete",
        tags=_TAGS,
        parameters=[_SESSION, _RESPONSE_URL],
        responses=_RESPONSE,
    )
    def delete(self, request: Request, session_id: str) -> OcpiResponse:
        return self._answer(request, session_id, Kind.CLEAR, response_url=request.query_params.get("response_url"))


class ChargingProfileResultView(OcpiAPIView):
    """/ocpi/2.2.1/emsp/chargingprofiles/{active|set|clear}/{token}: the response_url of one request we sent; the CPO
    POSTs ActiveChargingProfileResult, ChargingProfileResult or ClearProfileResult."""

    ocpi_module = ModuleID.CHARGINGPROFILES
    http_method_names = ["post", "head"]

    @extend_schema(
        operation_id="ocpi_emsp_chargingprofiles_result",
        tags=_TAGS,
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=["active", "set", "clear"]),
            OpenApiParameter("token", {"type": "string", "format": "uuid"}, OpenApiParameter.PATH),
        ],
        request=ocpi_request("ActiveChargingProfileResult"),
        responses=ocpi_responses(None),
        description="The body is an ActiveChargingProfileResult (`active`), ChargingProfileResult (`set`) or "
        "ClearProfileResult (`clear`).",
    )
    def post(self, request: Request, kind: str, token: str) -> OcpiResponse:
        chargingprofile_result_receive(
            partner=request_auth(request).partner, kind=kind.upper(), token=token, data=request.data
        )
        return OcpiResponse()


class ActiveProfileView(OcpiAPIView):
    """/ocpi/2.2.1/emsp/chargingprofiles/{session_id}: a CPO's unsolicited ActiveChargingProfile (PUT only)."""

    ocpi_module = ModuleID.CHARGINGPROFILES
    http_method_names = ["put", "head"]

    @extend_schema(
        operation_id="ocpi_emsp_chargingprofiles_put",
        tags=_TAGS,
        parameters=[_SESSION],
        request=ocpi_request("ActiveChargingProfile"),
        responses=ocpi_responses(None),
    )
    def put(self, request: Request, session_id: str) -> OcpiResponse:
        active_profile_receive(
            partner=request_auth(request).partner, routing=self.routing, session_id=session_id, data=request.data
        )
        return OcpiResponse()
