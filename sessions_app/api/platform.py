"""Platform API for sessions (/api/sessions/): the operator's systems start, update and stop our own sessions (until
a charge point backend does it) and send charging preferences for partners' sessions.

JWT-authenticated staff users (REST_FRAMEWORK defaults), DRF's error answers (`{"detail": ...}`,
ocpi_core.exceptions.exception_handler). Writes go through sessions_app.services: the row, the cached JSON (numbers
digit for digit) and the push to the token's eMSP change together or not at all. Answers are the cached OCPI JSON.
"""

from typing import Any

import orjson
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.views import APIView

from ocpi_core.api.platform import json_text_response
from ocpi_core.api.schema import object_schema
from sessions_app.models import Session, SessionStatus
from sessions_app.services import (
    Key,
    session_charging_preferences_send,
    session_doc,
    session_find,
    session_start,
    session_stop,
    session_update,
)

TAG = "Platform API: sessions"
_SESSION = object_schema("Session")
_ERRORS = {
    400: OpenApiResponse(description='Invalid body, each message naming its field: `{"detail": ...}`'),
    401: OpenApiResponse(description="No or an invalid JWT"),
    403: OpenApiResponse(description="Not a staff user"),
}
_NOT_FOUND = {404: OpenApiResponse(description="Unknown session")}
_PATH = [
    OpenApiParameter("country_code", str, OpenApiParameter.PATH, description="Country code of the CPO"),
    OpenApiParameter("party_id", str, OpenApiParameter.PATH, description="Party id of the CPO"),
    OpenApiParameter("session_id", str, OpenApiParameter.PATH, description="Session id (CiString(36))"),
]

_START_EXAMPLE = OpenApiExample(
    "Demo card at a demo EVSE",
    summary="The demo eMSP's card starts charging at the demo CPO's Amsterdam garage",
    value={
        "location_id": "DMC-AMSTERDAM-01",
        "evse_uid": "DMC-0001-01",
        "connector_id": "1",
        "cdr_token": {
            "country_code": "NL",
            "party_id": "DME",
            "uid": "DME0001A1",
            "type": "RFID",
            "contract_id": "NLDMEC00000001",
        },
        "auth_method": "WHITELIST",
    },
    request_only=True,
)
_UPDATE_EXAMPLE = OpenApiExample("Energy so far", value={"kwh": 7.5}, request_only=True)
_STOP_EXAMPLE = OpenApiExample("Completed now", value={"status": "COMPLETED"}, request_only=True)
_PREFERENCES_EXAMPLE = OpenApiExample(
    "Cheap, 30 kWh by 17:00",
    value={"profile_type": "CHEAP", "departure_time": "2026-01-05T16:00:00Z", "energy_need": 30},
    request_only=True,
)


class StartSerializer(serializers.Serializer[Any]):
    """Body of a session start: where, which token, how it was authorized."""

    location_id = serializers.CharField(max_length=36)
    evse_uid = serializers.CharField(max_length=36)
    connector_id = serializers.CharField(max_length=36)
    cdr_token = serializers.JSONField(help_text="OCPI CdrToken")
    auth_method = serializers.CharField(max_length=16)
    authorization_reference = serializers.CharField(max_length=36, required=False, allow_null=True)
    session_id = serializers.CharField(max_length=36, required=False, allow_null=True)
    status = serializers.ChoiceField(choices=SessionStatus.choices, default=SessionStatus.ACTIVE)
    start = serializers.DateTimeField(required=False, allow_null=True)
    meter_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    country_code = serializers.CharField(max_length=2, required=False, allow_null=True)
    party_id = serializers.CharField(max_length=3, required=False, allow_null=True)


class UpdateSerializer(serializers.Serializer[Any]):
    """Body of a session update: any of energy so far, a new charging period, status, total cost."""

    kwh = serializers.DecimalField(max_digits=19, decimal_places=6, min_value=0, required=False)  # type: ignore[arg-type]
    charging_period = serializers.JSONField(required=False, help_text="OCPI ChargingPeriod, appended")
    status = serializers.ChoiceField(choices=SessionStatus.choices, required=False)
    total_cost = serializers.JSONField(required=False, help_text="OCPI Price")
    at = serializers.DateTimeField(required=False, help_text="When the change happened (default: now)")


class StopSerializer(serializers.Serializer[Any]):
    status = serializers.CharField(default=SessionStatus.COMPLETED, help_text="COMPLETED (default) or INVALID")
    at = serializers.DateTimeField(required=False, help_text="When it ended (default: now)")


class PlatformPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


def _validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _session(kwargs: dict[str, Any], *, own: bool | None = True) -> Session:
    session = session_find(Key(kwargs["country_code"], kwargs["party_id"], kwargs["session_id"]))
    if session is None or (own is not None and session.is_own != own):
        raise NotFound("Unknown session")
    return session


class SessionListView(APIView):
    """/api/sessions/: list sessions (own by default), start one of our own (POST)."""

    parser_classes = [JSONParser]

    def _queryset(self, request: Request) -> QuerySet[Session]:
        own = request.query_params.get("own", "true").lower() != "false"
        queryset = Session.objects.filter(partner__isnull=own)
        wanted = request.query_params.get("status")
        if wanted:
            queryset = queryset.filter(status=wanted)
        location = request.query_params.get("location_id")
        if location:
            queryset = queryset.filter(location_id__iexact=location)
        return queryset.order_by("-last_updated", "-pk")

    @extend_schema(
        operation_id="platform_sessions_list",
        summary="List sessions, newest change first",
        tags=[TAG],
        parameters=[
            OpenApiParameter("own", bool, description="Our own sessions (default) or, with false, partners'"),
            OpenApiParameter("status", str, enum=SessionStatus.values, description="Only this status"),
            OpenApiParameter("location_id", str, description="Only this location"),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1}, description="Page size (default 50)"),
            OpenApiParameter("offset", {"type": "integer", "minimum": 0}, description="Index of the first session"),
        ],
        responses={
            200: {
                "type": "object",
                "required": ["count", "results"],
                "properties": {
                    "count": {"type": "integer"},
                    "next": {"type": "string", "format": "uri", "nullable": True},
                    "previous": {"type": "string", "format": "uri", "nullable": True},
                    "results": {"type": "array", "items": _SESSION},
                },
            },
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> HttpResponse:
        paginator = PlatformPagination()
        page = paginator.paginate_queryset(self._queryset(request), request, view=self) or []
        links = orjson.dumps(
            {"count": paginator.count, "next": paginator.get_next_link(), "previous": paginator.get_previous_link()}
        )
        results = b"[" + b",".join(session_doc(session).encode() for session in page) + b"]"
        return json_text_response(links[:-1] + b',"results":' + results + b"}")

    @extend_schema(
        operation_id="platform_sessions_start",
        examples=[_START_EXAMPLE],
        summary="Start one of our own sessions (pushed to the token's eMSP)",
        tags=[TAG],
        request=StartSerializer,
        responses={201: _SESSION, **_ERRORS, 404: OpenApiResponse(description="Unknown location")},
    )
    def post(self, request: Request) -> HttpResponse:
        session = session_start(**_validated(StartSerializer, request.data))
        return json_text_response(session_doc(session), status.HTTP_201_CREATED)


class SessionView(APIView):
    """/api/sessions/{country_code}/{party_id}/{session_id}: GET (own or a partner's), PATCH (own: update)."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="platform_sessions_get",
        summary="Get a session (ours or a partner's)",
        tags=[TAG],
        parameters=_PATH,
        responses={200: _SESSION, **_ERRORS, **_NOT_FOUND},
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        return json_text_response(session_doc(_session(kwargs, own=None)))

    @extend_schema(
        operation_id="platform_sessions_update",
        examples=[_UPDATE_EXAMPLE],
        summary="Update one of our own sessions (pushed to the token's eMSP)",
        tags=[TAG],
        parameters=_PATH,
        request=UpdateSerializer,
        responses={200: _SESSION, **_ERRORS, **_NOT_FOUND},
    )
    def patch(self, request: Request, **kwargs: Any) -> HttpResponse:
        session = session_update(session=_session(kwargs), **_validated(UpdateSerializer, request.data))
        return json_text_response(session_doc(session))


class SessionStopView(APIView):
    """/api/sessions/{country_code}/{party_id}/{session_id}/stop: end one of our own sessions."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="platform_sessions_stop",
        examples=[_STOP_EXAMPLE],
        summary="Stop one of our own sessions (pushed; its CDR follows)",
        tags=[TAG],
        parameters=_PATH,
        request=StopSerializer,
        responses={200: _SESSION, **_ERRORS, **_NOT_FOUND},
    )
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        session = session_stop(session=_session(kwargs), **_validated(StopSerializer, request.data or {}))
        return json_text_response(session_doc(session))


class SessionChargingPreferencesView(APIView):
    """/api/sessions/{country_code}/{party_id}/{session_id}/charging_preferences: send ChargingPreferences for a
    partner's session to its CPO; answers the CPO's ChargingPreferencesResponse."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="platform_sessions_charging_preferences",
        examples=[_PREFERENCES_EXAMPLE],
        summary="Send charging preferences for a partner's session to its CPO",
        tags=[TAG],
        parameters=_PATH,
        request={"application/json": object_schema("ChargingPreferences")},
        responses={
            200: inline_serializer("ChargingPreferencesAnswer", {"result": serializers.CharField()}),
            **_ERRORS,
            **_NOT_FOUND,
        },
    )
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        answer = session_charging_preferences_send(session=_session(kwargs, own=False), data=request.data)
        return json_text_response(orjson.dumps({"result": answer}))
