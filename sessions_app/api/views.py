"""Sessions interfaces (REFERENCE §7.2, §7.3): CPO Sender (our own sessions) and eMSP Receiver (partners')."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import object_schema, ocpi_list, ocpi_request, ocpi_responses
from ocpi_core.authentication import request_auth
from ocpi_core.constants import ModuleID, Role
from ocpi_core.envelope import OcpiResponse, raw_data_response
from ocpi_core.pagination import paginate
from ocpi_core.selectors import own_parties_for_request
from sessions_app.services import (
    Key,
    session_charging_preferences_set,
    session_get,
    session_patch,
    session_put,
    sessions_for_partner,
)

_TAGS = ["OCPI sessions"]
_PREFERENCES_RESPONSE = {
    "type": "string",
    "enum": ["ACCEPTED", "DEPARTURE_REQUIRED", "ENERGY_NEED_REQUIRED", "NOT_POSSIBLE", "PROFILE_TYPE_NOT_SUPPORTED"],
}


def _visible_sessions(view: OcpiAPIView, request: Request) -> Any:
    """Our own sessions of the addressed CPO parties whose token belongs to the calling partner."""
    parties = own_parties_for_request(routing=view.routing, role=Role.CPO)
    return sessions_for_partner(partner=request_auth(request).partner, routing=view.routing, cpo_parties=parties)


class SessionSenderListView(OcpiAPIView):
    """GET /ocpi/2.2.1/cpo/sessions: our sessions of the caller's tokens, paginated (a missing date_from is "from
    the beginning", REFERENCE §7.2); the cached JSON is joined, never re-rendered."""

    ocpi_module = ModuleID.SESSIONS

    @ocpi_list(object_schema("Session"), operation_id="ocpi_cpo_sessions_list", tags=_TAGS)
    def get(self, request: Request) -> Any:
        queryset = _visible_sessions(self, request).only("pk", "last_updated", "doc")
        page = paginate(queryset, request.query_params, request.path)
        body = b"[" + b",".join(session.doc.encode() for session in page.objects) + b"]"
        return raw_data_response(body, headers=page.headers)


class SessionChargingPreferencesView(OcpiAPIView):
    """PUT /ocpi/2.2.1/cpo/sessions/{session_id}/charging_preferences → ChargingPreferencesResponse."""

    ocpi_module = ModuleID.SESSIONS
    http_method_names = ["put"]

    @extend_schema(
        operation_id="ocpi_cpo_sessions_charging_preferences",
        tags=_TAGS,
        request=ocpi_request("ChargingPreferences"),
        responses=ocpi_responses(_PREFERENCES_RESPONSE),
    )
    def put(self, request: Request, session_id: str) -> OcpiResponse:
        answer = session_charging_preferences_set(
            partner=request_auth(request).partner,
            session_id=session_id,
            sessions=_visible_sessions(self, request),
            data=request.data,
        )
        return OcpiResponse(data=answer)


class SessionReceiverView(OcpiAPIView):
    """/ocpi/2.2.1/emsp/sessions/{country_code}/{party_id}/{session_id}: GET, PUT, PATCH (no DELETE: 405)."""

    ocpi_module = ModuleID.SESSIONS
    http_method_names = ["get", "put", "patch", "head"]

    def _key(self, kwargs: dict[str, Any]) -> Key:
        return Key(kwargs["country_code"], kwargs["party_id"], kwargs["session_id"])

    @extend_schema(
        operation_id="ocpi_emsp_sessions_get", tags=_TAGS, responses=ocpi_responses(object_schema("Session"))
    )
    def get(self, request: Request, **kwargs: Any) -> Any:
        doc = session_get(partner=request_auth(request).partner, key=self._key(kwargs))
        return raw_data_response(doc.encode())

    @extend_schema(
        operation_id="ocpi_emsp_sessions_put",
        tags=_TAGS,
        request=ocpi_request("Session"),
        responses=ocpi_responses(None, created=True),
    )
    def put(self, request: Request, **kwargs: Any) -> OcpiResponse:
        result = session_put(partner=request_auth(request).partner, key=self._key(kwargs), data=request.data)
        return OcpiResponse(http_status=201 if result.created else 200)

    @extend_schema(
        operation_id="ocpi_emsp_sessions_patch",
        tags=_TAGS,
        request=ocpi_request("Session"),
        responses=ocpi_responses(None),
    )
    def patch(self, request: Request, **kwargs: Any) -> OcpiResponse:
        session_patch(partner=request_auth(request).partner, key=self._key(kwargs), data=request.data)
        return OcpiResponse()
