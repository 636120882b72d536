"""Platform API for our own locations (/api/locations/): the operator's own systems create and update them here.

JWT-authenticated staff users (REST_FRAMEWORK defaults), DRF's error answers (`{"detail": ...}`,
ocpi_core.exceptions.exception_handler). Bodies are OCPI Location / EVSE / Connector objects, checked with the same
field rules as the OCPI receiver and written by the same services (locations.services), which refresh the cached
JSON and write a push outbox row per receiving partner in the same transaction. Unlike OCPI, `last_updated` may be
left out anywhere (object and children): the platform stamps the time of the request.

Only our own CPO parties: a path or body naming another party is refused with 400. A write older than what is
stored (an explicit `last_updated`, or `at` of a status change, before the stored one) is not applied: 409.
"""

import copy
from typing import Any

import orjson
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from locations.models import Evse, Location
from locations.services import (
    Key,
    WriteResult,
    evse_status_set,
    location_find,
    location_object_get,
    location_patch,
    location_put,
)
from ocpi_core.api.platform import Conflict, demo_path_parameter
from ocpi_core.api.schema import object_schema
from ocpi_core.constants import Role
from ocpi_core.envelope import format_datetime
from ocpi_core.exceptions import InvalidParameters
from ocpi_core.models import Party
from ocpi_core.validation import enum_values, validate

TAG = "Platform API: locations"
_CHILD = {"Location": ("evses", "EVSE"), "EVSE": ("connectors", "Connector")}


# --- helpers ---


def own_cpo_party(country_code: Any, party_id: Any) -> Party:
    """One of our own CPO parties (CiString comparison); 400 naming the party otherwise."""
    party = None
    if isinstance(country_code, str) and isinstance(party_id, str):
        party = Party.objects.filter(
            partner__isnull=True, role=Role.CPO, country_code__iexact=country_code, party_id__iexact=party_id
        ).first()
    if party is None:
        raise InvalidParameters(f"party_id: {country_code}*{party_id} is not one of our own CPO parties")
    return party


def stamped(data: Any, type_name: str, stamp: str) -> Any:
    """A copy of `data` with `last_updated` set to `stamp` where it is left out, in the object and its children."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    if out.get("last_updated") is None:
        out["last_updated"] = stamp
    child = _CHILD.get(type_name)
    if child and isinstance(out.get(child[0]), list):
        out[child[0]] = [stamped(item, child[1], stamp) for item in out[child[0]]]
    return out


def _same(a: Any, b: str | None) -> bool:
    return isinstance(a, str) and a.lower() == (b or "").lower()


def _picked(result: WriteResult, key: Key) -> dict[str, Any]:
    """The written object (location, EVSE or connector) from the location's freshly cached JSON."""
    doc = orjson.loads(result.location.doc) if result.location.doc else None
    if doc is None:
        return location_object_get(key=key, partner=None)
    if key.evse_uid is None:
        return doc
    evse = next((e for e in doc.get("evses", []) if _same(e.get("uid"), key.evse_uid)), None)
    if evse is None:
        return location_object_get(key=key, partner=None)
    if key.connector_id is None:
        return evse
    connector = next((c for c in evse.get("connectors", []) if _same(c.get("id"), key.connector_id)), None)
    return connector if connector is not None else location_object_get(key=key, partner=None)


def _not_older(result: WriteResult) -> None:
    if result.ignored:
        raise Conflict("last_updated: older than the stored object's; not applied")


def _now() -> str:
    return format_datetime(timezone.now())


# --- OpenAPI ---


def _optional_stamps(schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema with `last_updated` optional everywhere (the platform stamps it)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("required"), list) and "last_updated" in node["required"]:
                node["required"] = [name for name in node["required"] if name != "last_updated"]
                if not node["required"]:
                    del node["required"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def _patch_schema(type_name: str) -> dict[str, Any]:
    schema = _optional_stamps(object_schema(type_name))
    schema.pop("required", None)
    schema["description"] = f"Any fields of the {type_name}; only these change"
    return schema


_ERRORS = {
    400: OpenApiResponse(
        description="Invalid body (the OCPI field rules, each message naming its field) or a party "
        'that is not one of our own CPO parties: `{"detail": ...}`'
    ),
    401: OpenApiResponse(description="No or an invalid JWT"),
    403: OpenApiResponse(description="Not a staff user"),
}
_NOT_FOUND = {404: OpenApiResponse(description="Unknown location, EVSE or connector")}
_CONFLICT = {409: OpenApiResponse(description="Older than the stored object (last_updated / at): not applied")}


# Examples: the demo CPO NL*DMC of `ocpi_demo` / `scripts/run`, so "Try it out" works on a fresh start as shown.
_DEMO_LOCATION, _DEMO_EVSE, _NEW_LOCATION, _NEW_EVSE = (
    "DMC-AMSTERDAM-01",
    "DMC-0001-01",
    "DMC-EXAMPLE-01",
    "DMC-0009-01",
)
_CONNECTOR_EXAMPLE = {
    "id": "1",
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 32,
    "max_electric_power": 22000,
    "tariff_ids": ["DMC-AC-STANDARD"],
}
_EVSE_EXAMPLE = {
    "uid": _NEW_EVSE,
    "evse_id": "NL*DMC*E000901",
    "status": "AVAILABLE",
    "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
    "connectors": [_CONNECTOR_EXAMPLE],
}
_LOCATION_EXAMPLE = {
    "country_code": "NL",
    "party_id": "DMC",
    "id": _NEW_LOCATION,
    "publish": True,
    "name": "Example street charger",
    "address": "Damrak 1",
    "city": "Amsterdam",
    "postal_code": "1012 LG",
    "country": "NLD",
    "coordinates": {"latitude": "52.377956", "longitude": "4.897070"},
    "parking_type": "ON_STREET",
    "time_zone": "Europe/Amsterdam",
    "evses": [_EVSE_EXAMPLE],
}


def _example(name: str, value: Any, summary: str = "") -> OpenApiExample:
    return OpenApiExample(name, value=value, summary=summary, request_only=True)


_LOCATION_PARAMETER = demo_path_parameter("location_id", "Location id (CiString(36))", _DEMO_LOCATION)
_PARTY_PARAMETERS = [
    demo_path_parameter("country_code", "Country code of our own CPO party", "NL"),
    demo_path_parameter("party_id", "Party id of our own CPO party", "DMC"),
]
_PATH = [*_PARTY_PARAMETERS, _LOCATION_PARAMETER]
_EVSE_PARAMETER = demo_path_parameter("evse_uid", "EVSE uid", _DEMO_EVSE)
_EVSE_PATH = [*_PATH, _EVSE_PARAMETER]
_CONNECTOR_PATH = [*_EVSE_PATH, demo_path_parameter("connector_id", "Connector id", "1")]
# PUT examples create new objects (the new location of the POST example, a new EVSE of a demo location), so trying
# them out never replaces demo data
_PUT_PATHS = {
    "Location": [*_PARTY_PARAMETERS, demo_path_parameter("location_id", "Location id (CiString(36))", _NEW_LOCATION)],
    "EVSE": [*_PATH, demo_path_parameter("evse_uid", "EVSE uid", _NEW_EVSE)],
    "Connector": [
        *_PATH,
        demo_path_parameter("evse_uid", "EVSE uid", _NEW_EVSE),
        demo_path_parameter("connector_id", "Connector id", "2"),
    ],
}
_PUT_EXAMPLES = {
    "Location": _example("New location", _LOCATION_EXAMPLE, "A new location of the demo CPO"),
    "EVSE": _example("New EVSE", _EVSE_EXAMPLE, "A new EVSE of a demo location (PUT it after the POST example)"),
    "Connector": _example("Second connector", {**_CONNECTOR_EXAMPLE, "id": "2"}, "A second connector of that EVSE"),
}
_PATCH_EXAMPLES = {
    "Location": _example("Rename", {"name": "Parking Oosterdok (level -1)"}),
    "EVSE": _example("Floor level", {"floor_level": "-2"}),
    "Connector": _example("Power", {"max_electric_power": 11000}),
}


def _object_schema_view(type_name: str, noun: str, parameters: list[OpenApiParameter]) -> Any:
    """extend_schema_view for GET / PUT / PATCH of one object type."""
    schema = object_schema(type_name)
    op = f"platform_locations_{noun}"
    return extend_schema_view(
        get=extend_schema(
            operation_id=f"{op}_get",
            summary=f"Get one of our own {type_name}s",
            tags=[TAG],
            parameters=parameters,
            responses={200: schema, **_ERRORS, **_NOT_FOUND},
        ),
        put=extend_schema(
            operation_id=f"{op}_put",
            summary=f"Create or replace one of our own {type_name}s (pushed to partners)",
            tags=[TAG],
            parameters=_PUT_PATHS[type_name],
            request=OpenApiRequest(_optional_stamps(schema)),
            examples=[_PUT_EXAMPLES[type_name]],
            responses={200: schema, 201: schema, **_ERRORS, **_NOT_FOUND, **_CONFLICT},
        ),
        patch=extend_schema(
            operation_id=f"{op}_patch",
            summary=f"Change some fields of one of our own {type_name}s (pushed to partners)",
            tags=[TAG],
            parameters=parameters,
            request=OpenApiRequest(_patch_schema(type_name)),
            examples=[_PATCH_EXAMPLES[type_name]],
            responses={200: schema, **_ERRORS, **_NOT_FOUND, **_CONFLICT},
        ),
    )


# --- views ---


class PlatformPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


_LIST_PARAMETERS = [
    OpenApiParameter("party", str, description="Only this own party, as `NL*ABC`"),
    OpenApiParameter("city", str, description="Only locations in this city (case-insensitive)"),
    OpenApiParameter(
        "status",
        {"type": "string", "enum": sorted(enum_values("Status"))},
        description="Only locations with at least one EVSE in this status",
    ),
    OpenApiParameter("limit", {"type": "integer", "minimum": 1}, description="Page size (default 50, at most 500)"),
    OpenApiParameter("offset", {"type": "integer", "minimum": 0}, description="Index of the first location"),
]
_LIST_RESPONSE = {
    "type": "object",
    "required": ["count", "results"],
    "properties": {
        "count": {"type": "integer"},
        "next": {"type": "string", "format": "uri", "nullable": True},
        "previous": {"type": "string", "format": "uri", "nullable": True},
        "results": {"type": "array", "items": object_schema("Location")},
    },
}


class LocationListView(APIView):
    """/api/locations/: our own locations (list) and a new one (create)."""

    parser_classes = [JSONParser]

    def _queryset(self, request: Request) -> QuerySet[Location]:
        queryset = Location.objects.filter(partner__isnull=True)
        party = request.query_params.get("party")
        if party:
            country_code, _, party_id = party.replace("-", "*").partition("*")
            queryset = queryset.filter(country_code__iexact=country_code, party_id__iexact=party_id)
        city = request.query_params.get("city")
        if city:
            queryset = queryset.filter(city__iexact=city)
        evse_status = request.query_params.get("status")
        if evse_status:
            if evse_status not in enum_values("Status"):
                raise InvalidParameters(f"status: {evse_status!r} is not an EVSE status")
            queryset = queryset.filter(pk__in=Evse.objects.filter(status=evse_status).values("location_id"))
        return queryset.order_by("country_code", "party_id", "ocpi_id", "pk").only(
            "pk", "country_code", "party_id", "ocpi_id", "doc"
        )

    @extend_schema(
        operation_id="platform_locations_list",
        summary="List our own locations",
        tags=[TAG],
        parameters=_LIST_PARAMETERS,
        responses={200: _LIST_RESPONSE, **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        paginator = PlatformPagination()
        page = paginator.paginate_queryset(self._queryset(request), request, view=self) or []
        results = [
            orjson.loads(location.doc)
            if location.doc
            else location_object_get(key=Key(location.country_code, location.party_id, location.ocpi_id), partner=None)
            for location in page
        ]
        return paginator.get_paginated_response(results)

    @extend_schema(
        operation_id="platform_locations_create",
        summary="Create one of our own locations (pushed to partners)",
        description="The body is an OCPI Location; its country_code and party_id must name one of our own CPO parties.",
        tags=[TAG],
        request=OpenApiRequest(_optional_stamps(object_schema("Location"))),
        examples=[_PUT_EXAMPLES["Location"]],
        responses={
            201: object_schema("Location"),
            **_ERRORS,
            409: OpenApiResponse(description="A location with this id already exists (use PUT to replace it)"),
        },
    )
    def post(self, request: Request) -> Response:
        data = validate("Location", stamped(request.data, "Location", _now()))
        party = own_cpo_party(data["country_code"], data["party_id"])
        key = Key(party.country_code, party.party_id, data["id"])
        conflict = Conflict(
            f"id: location {key.location_id} already exists under {party.country_code}*"
            f"{party.party_id}; PUT replaces it"
        )
        try:
            with transaction.atomic():
                if location_find(key) is not None:
                    raise conflict
                result = location_put(partner=None, key=key, data=data)
        except IntegrityError as exc:  # created concurrently by another request
            raise conflict from exc
        url = reverse(
            "platform-location",
            kwargs={"country_code": key.country_code, "party_id": key.party_id, "location_id": key.location_id},
        )
        return Response(_picked(result, key), status=status.HTTP_201_CREATED, headers={"Location": url})


class _ObjectView(APIView):
    """GET / PUT / PATCH of one own Location, EVSE or Connector (by the depth of the URL)."""

    parser_classes = [JSONParser]
    type_name = "Location"
    id_field = "id"

    def _key(self, kwargs: dict[str, Any], body: Any = None) -> Key:
        party = own_cpo_party(kwargs["country_code"], kwargs["party_id"])
        ids = [kwargs["location_id"], kwargs.get("evse_uid"), kwargs.get("connector_id")]
        depth = 0 if ids[1] is None else 1 if ids[2] is None else 2
        # a new object is keyed as its body spells its id (CiString: the URL may differ in case)
        if isinstance(body, dict) and _same(body.get(self.id_field), ids[depth]):
            ids[depth] = body[self.id_field]
        return Key(party.country_code, party.party_id, ids[0], ids[1], ids[2])  # type: ignore[arg-type]

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(location_object_get(key=self._key(kwargs), partner=None))

    def put(self, request: Request, **kwargs: Any) -> Response:
        key = self._key(kwargs, request.data)
        result = location_put(partner=None, key=key, data=stamped(request.data, self.type_name, _now()))
        _not_older(result)
        return Response(_picked(result, key), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    def patch(self, request: Request, **kwargs: Any) -> Response:
        key = self._key(kwargs)
        result = location_patch(partner=None, key=key, data=stamped(request.data, self.type_name, _now()))
        _not_older(result)
        return Response(_picked(result, key))


@_object_schema_view("Location", "location", _PATH)
class LocationView(_ObjectView):
    """/api/locations/{country_code}/{party_id}/{location_id}"""

    type_name, id_field = "Location", "id"


@_object_schema_view("EVSE", "evse", _EVSE_PATH)
class EvseView(_ObjectView):
    """/api/locations/{country_code}/{party_id}/{location_id}/evses/{evse_uid}"""

    type_name, id_field = "EVSE", "uid"


@_object_schema_view("Connector", "connector", _CONNECTOR_PATH)
class ConnectorView(_ObjectView):
    """/api/locations/{country_code}/{party_id}/{location_id}/evses/{evse_uid}/connectors/{connector_id}"""

    type_name, id_field = "Connector", "id"


class EvseStatusSerializer(serializers.Serializer):
    """A status change reported by a charge point backend."""

    status = serializers.ChoiceField(choices=sorted(enum_values("Status")), help_text="The EVSE's new status")
    at = serializers.DateTimeField(
        required=False, help_text="When the status changed (ISO 8601; default: now). Older than stored: 409"
    )


_STATUS_REQUEST = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": sorted(enum_values("Status")), "description": "The EVSE's new status"},
        "at": {
            "type": "string",
            "format": "date-time",
            "description": "When the status changed (ISO 8601; default: now). Older than the stored EVSE: 409",
        },
    },
}


class EvseStatusView(APIView):
    """POST /api/locations/{country_code}/{party_id}/{location_id}/evses/{evse_uid}/status: the hot path."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="platform_locations_evse_status",
        summary="Set the status of one of our own EVSEs (PATCHed to partners)",
        tags=[TAG],
        parameters=_EVSE_PATH,
        request=OpenApiRequest(_STATUS_REQUEST),
        examples=[
            _example("Charging", {"status": "CHARGING"}, "A session started"),
            _example("Available", {"status": "AVAILABLE"}, "The car left"),
        ],
        responses={200: object_schema("EVSE"), **_ERRORS, **_NOT_FOUND, **_CONFLICT},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        body = EvseStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        party = own_cpo_party(kwargs["country_code"], kwargs["party_id"])
        key = Key(party.country_code, party.party_id, kwargs["location_id"], kwargs["evse_uid"])
        result = evse_status_set(key=key, status=body.validated_data["status"], at=body.validated_data.get("at"))
        _not_older(result)
        return Response(_picked(result, key))
