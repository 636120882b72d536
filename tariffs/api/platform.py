"""Platform API for our own tariffs (/api/tariffs/): the operator's own systems create, replace and delete them here.

JWT-authenticated staff users (REST_FRAMEWORK defaults), DRF's error answers (`{"detail": ...}`,
ocpi_core.exceptions.exception_handler). Bodies are OCPI Tariff objects, checked and written by tariffs.services like
a partner's PUT (money kept exact), which refreshes the cached JSON and writes a push outbox row per receiving partner
in the same transaction. `last_updated` may be left out: the platform stamps the time of the request. Answers are the
cached JSON as stored, digit for digit. A tariff under a party that is not one of our own CPO parties: 400 on writes,
404 on reads; a write older than the stored tariff is not applied (409); a tariff still listed by one of our
connectors is not deleted (400).
"""

from typing import Any

import orjson
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiRequest, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.views import APIView

from ocpi_core.api.platform import Conflict, demo_path_parameter, json_text_response
from ocpi_core.api.schema import object_schema
from ocpi_core.envelope import format_datetime
from ocpi_core.exceptions import InvalidParameters, NotFound
from tariffs.models import Tariff, decimalize, dumps_exact, loads_exact
from tariffs.pricing import PricingError, price_session
from tariffs.services import Key, WriteResult, tariff_delete, tariff_doc, tariff_find, tariff_get, tariff_put

TAG = "Platform API: tariffs"


def _stamped(data: Any) -> Any:
    if isinstance(data, dict) and data.get("last_updated") is None:
        return {**data, "last_updated": format_datetime(timezone.now())}
    return data


def _written(result: WriteResult) -> HttpResponse:
    if result.ignored:
        raise Conflict("last_updated: older than the stored tariff's; not applied")
    return json_text_response(
        tariff_doc(result.tariff), status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    )


# --- OpenAPI ---


def _request_schema() -> dict[str, Any]:
    schema = object_schema("Tariff")
    schema["required"] = [name for name in schema["required"] if name != "last_updated"]
    return schema


_TARIFF = object_schema("Tariff")
_ERRORS = {
    400: OpenApiResponse(
        description="Invalid body (each message naming its field), a party that is not one of our own CPO parties, "
        'or (DELETE) a tariff still listed by one of our connectors: `{"detail": ...}`'
    ),
    401: OpenApiResponse(description="No or an invalid JWT"),
    403: OpenApiResponse(description="Not a staff user"),
}
_NOT_FOUND = {404: OpenApiResponse(description="Unknown tariff")}


def _path(tariff_id: str) -> list[OpenApiParameter]:
    """The path parameters, with examples (what Swagger UI's "Try it out" fills in) from the demo data."""
    return [
        demo_path_parameter(name, description, value)
        for name, description, value in (
            ("country_code", "Country code of the CPO party (our own, except for /price)", "NL"),
            ("party_id", "Party id of the CPO party (our own, except for /price)", "DMC"),
            ("tariff_id", "Tariff id (CiString(36))", tariff_id),
        )
    ]


# Examples: the demo CPO NL*DMC of `ocpi_demo` / `scripts/run`; writes make a new tariff, never replace a demo one.
_PATH, _NEW_PATH = _path("DMC-AC-STANDARD"), _path("DMC-EXAMPLE-01")
_TARIFF_EXAMPLE = OpenApiExample(
    "New tariff",
    summary="0.30 EUR/kWh excl. VAT, 2 EUR/hour parking after 2 hours",
    value={
        "country_code": "NL",
        "party_id": "DMC",
        "id": "DMC-EXAMPLE-01",
        "currency": "EUR",
        "type": "REGULAR",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1}]},
            {
                "price_components": [{"type": "PARKING_TIME", "price": 2.00, "vat": 21.0, "step_size": 60}],
                "restrictions": {"min_duration": 7200},
            },
        ],
    },
    request_only=True,
)
_PRICE_EXAMPLE = OpenApiExample(
    "Two hours, 20 kWh",
    value={
        "start_date_time": "2026-01-05T09:00:00Z",
        "end_date_time": "2026-01-05T11:00:00Z",
        "time_zone": "Europe/Amsterdam",
        "charging_periods": [
            {
                "start_date_time": "2026-01-05T09:00:00Z",
                "dimensions": [{"type": "ENERGY", "volume": 20}, {"type": "TIME", "volume": 2}],
            }
        ],
    },
    request_only=True,
)


# --- views ---


class PlatformPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class TariffListView(APIView):
    """/api/tariffs/: our own tariffs (list) and a new one (create)."""

    parser_classes = [JSONParser]

    def _queryset(self, request: Request) -> QuerySet[Tariff]:
        queryset = Tariff.objects.filter(partner__isnull=True)
        party = request.query_params.get("party")
        if party:
            country_code, _, party_id = party.replace("-", "*").partition("*")
            queryset = queryset.filter(country_code__iexact=country_code, party_id__iexact=party_id)
        return queryset.order_by("country_code", "party_id", "ocpi_id", "pk")

    @extend_schema(
        operation_id="platform_tariffs_list",
        summary="List our own tariffs",
        tags=[TAG],
        parameters=[
            OpenApiParameter("party", str, description="Only this own party, as `NL*ABC`"),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1}, description="Page size (default 50, max 500)"),
            OpenApiParameter("offset", {"type": "integer", "minimum": 0}, description="Index of the first tariff"),
        ],
        responses={
            200: {
                "type": "object",
                "required": ["count", "results"],
                "properties": {
                    "count": {"type": "integer"},
                    "next": {"type": "string", "format": "uri", "nullable": True},
                    "previous": {"type": "string", "format": "uri", "nullable": True},
                    "results": {"type": "array", "items": _TARIFF},
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
        results = b"[" + b",".join(tariff_doc(tariff).encode() for tariff in page) + b"]"
        return json_text_response(links[:-1] + b',"results":' + results + b"}")

    @extend_schema(
        operation_id="platform_tariffs_create",
        summary="Create one of our own tariffs (pushed to partners)",
        description="The body is an OCPI Tariff; its country_code and party_id must name one of our own CPO parties.",
        tags=[TAG],
        request=OpenApiRequest(_request_schema()),
        examples=[_TARIFF_EXAMPLE],
        responses={
            201: _TARIFF,
            **_ERRORS,
            409: OpenApiResponse(description="A tariff with this id already exists (use PUT to replace it)"),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        data = _stamped(request.data)
        if not isinstance(data, dict):
            raise InvalidParameters("body: must be a JSON object (Tariff)")
        key = Key(str(data.get("country_code", "")), str(data.get("party_id", "")), str(data.get("id", "")))
        conflict = Conflict(f"id: tariff {key.tariff_id} already exists; PUT replaces it")
        try:
            with transaction.atomic():
                if tariff_find(key) is not None:
                    raise conflict
                result = tariff_put(partner=None, key=key, data=data)
        except IntegrityError as exc:  # created concurrently by another request
            raise conflict from exc
        tariff = result.tariff
        url = reverse(
            "platform-tariff",
            kwargs={"country_code": tariff.country_code, "party_id": tariff.party_id, "tariff_id": tariff.ocpi_id},
        )
        return json_text_response(tariff_doc(tariff), status.HTTP_201_CREATED, headers={"Location": url})


class TariffView(APIView):
    """/api/tariffs/{country_code}/{party_id}/{tariff_id}: GET, PUT (create or replace), DELETE."""

    parser_classes = [JSONParser]

    @staticmethod
    def _key(kwargs: dict[str, Any]) -> Key:
        return Key(kwargs["country_code"], kwargs["party_id"], kwargs["tariff_id"])

    @extend_schema(
        operation_id="platform_tariffs_get",
        summary="Get one of our own tariffs",
        tags=[TAG],
        parameters=_PATH,
        responses={200: _TARIFF, **_ERRORS, **_NOT_FOUND},
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        return json_text_response(tariff_get(partner=None, key=self._key(kwargs)))

    @extend_schema(
        operation_id="platform_tariffs_put",
        summary="Create or replace one of our own tariffs (pushed to partners)",
        tags=[TAG],
        parameters=_NEW_PATH,
        request=OpenApiRequest(_request_schema()),
        examples=[_TARIFF_EXAMPLE],
        responses={
            200: _TARIFF,
            201: _TARIFF,
            **_ERRORS,
            409: OpenApiResponse(description="Older than the stored tariff (last_updated): not applied"),
        },
    )
    def put(self, request: Request, **kwargs: Any) -> HttpResponse:
        key = self._key(kwargs)
        data = _stamped(request.data)
        if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"].lower() == key.tariff_id.lower():
            key = Key(key.country_code, key.party_id, data["id"])  # a new tariff is keyed as its body spells its id
        return _written(tariff_put(partner=None, key=key, data=data))

    @extend_schema(
        operation_id="platform_tariffs_delete",
        summary="Delete one of our own tariffs (pushed to partners as a DELETE)",
        tags=[TAG],
        parameters=_NEW_PATH,
        responses={204: None, **_ERRORS, **_NOT_FOUND},
    )
    def delete(self, request: Request, **kwargs: Any) -> HttpResponse:
        tariff_delete(partner=None, key=self._key(kwargs))
        return HttpResponse(status=status.HTTP_204_NO_CONTENT)


class TariffPriceView(APIView):
    """/api/tariffs/{country_code}/{party_id}/{tariff_id}/price: what a session would cost under a stored tariff.

    Any stored tariff, ours or a partner's (an eMSP checking a CPO's CDR prices with the CPO's tariff). The body
    carries the session as a CDR would: charging_periods, start_date_time, end_date_time, optional time_zone (the
    Location's, default UTC) and the reservation flags. Numbers are read exactly (never through a float).
    """

    parser_classes: list[Any] = []  # the body is read as text: JSONParser would turn prices into floats

    @extend_schema(
        operation_id="platform_tariffs_price",
        summary="Price a session with a stored tariff (own or partner's)",
        tags=[TAG],
        parameters=_PATH,
        request={
            "application/json": {
                "type": "object",
                "required": ["charging_periods", "start_date_time", "end_date_time"],
                "properties": {
                    "charging_periods": {"type": "array", "items": object_schema("ChargingPeriod")},
                    "start_date_time": {"type": "string", "format": "date-time"},
                    "end_date_time": {"type": "string", "format": "date-time"},
                    "time_zone": {"type": "string", "example": "Europe/Amsterdam"},
                    "reservation": {"type": "boolean"},
                    "reservation_expires": {"type": "boolean"},
                },
            }
        },  # a media type named here: the view has no parser (it reads the body itself), so none is inferred
        examples=[_PRICE_EXAMPLE],
        responses={
            200: OpenApiResponse(description="Pricing.as_dict(): CDR totals, the line-by-line breakdown, periods"),
            **_ERRORS,
            **_NOT_FOUND,
        },
    )
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        stored = (
            Tariff.objects.filter(
                country_code__iexact=kwargs["country_code"],
                party_id__iexact=kwargs["party_id"],
                ocpi_id__iexact=kwargs["tariff_id"],
            )
            .order_by("partner_id")  # ours (no partner) first
            .first()
        )
        if stored is None:
            raise NotFound("Unknown tariff")
        try:
            data = loads_exact(request.body or b"")
        except ValueError as exc:
            raise InvalidParameters("body: not JSON") from exc
        if not isinstance(data, dict):
            raise InvalidParameters("body: must be a JSON object")
        errors = {
            name: "this field is required"
            for name in ("charging_periods", "start_date_time", "end_date_time")
            if data.get(name) is None
        }
        if not isinstance(data.get("charging_periods", []), list):
            errors["charging_periods"] = "must be a list of ChargingPeriods"
        for name in ("reservation", "reservation_expires"):
            if not isinstance(data.get(name, False), bool):
                errors[name] = "must be true or false"
        if errors:
            raise ValidationError(errors)
        try:
            pricing = price_session(
                tariff=decimalize("Tariff", loads_exact(tariff_doc(stored))),
                charging_periods=decimalize("ChargingPeriod", data["charging_periods"]),
                start_date_time=data["start_date_time"],
                end_date_time=data["end_date_time"],
                time_zone=str(data.get("time_zone") or "UTC"),
                reservation=data.get("reservation", False),
                reservation_expires=data.get("reservation_expires", False),
            )
        except PricingError as exc:
            raise ValidationError({exc.field: [exc.message]}) from exc
        return json_text_response(dumps_exact(pricing.as_dict()))
