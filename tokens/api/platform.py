"""Platform API for our own eMSP tokens (/api/tokens/): the operator's systems issue, replace, block, unblock and
expire tokens here.

JWT-authenticated staff users (REST_FRAMEWORK defaults), DRF's error answers (`{"detail": ...}`). Bodies are OCPI
Token objects, checked and written by tokens.services like a partner's PUT, which refreshes the cached JSON and writes
a push outbox row per CPO partner in the same transaction; `last_updated` is stamped by the platform. A token under a
party that is not one of our own eMSP parties: 400 on writes, 404 on reads.
"""

from typing import Any

import orjson
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiRequest, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.views import APIView

from ocpi_core.api.platform import demo_path_parameter, json_text_response
from ocpi_core.api.schema import object_schema
from ocpi_core.exceptions import InvalidParameters, UnknownToken
from ocpi_core.validation import enum_values
from tokens.models import Token
from tokens.services import (
    Key,
    token_change_own,
    token_doc,
    token_expire_own,
    token_find,
    token_save_own,
    token_type_param,
)

TAG = "Platform API: tokens"
_TOKEN = object_schema("Token")
_ERRORS = {
    400: OpenApiResponse(description="Invalid body (naming the field) or not one of our own eMSP parties"),
    401: OpenApiResponse(description="No or an invalid JWT"),
    403: OpenApiResponse(description="Not a staff user"),
}
_NOT_FOUND = {404: OpenApiResponse(description="Unknown token")}


def _path(uid: str) -> list[OpenApiParameter]:
    """The path and `type` parameters, with examples (what Swagger UI's "Try it out" fills in) from the demo data."""
    return [
        *(
            demo_path_parameter(name, description, value)
            for name, description, value in (
                ("country_code", "Country code of our own eMSP party", "NL"),
                ("party_id", "Party id of our own eMSP party", "DME"),
                ("uid", "Token uid (CiString(36))", uid),
            )
        ),
        OpenApiParameter(
            "type",
            str,
            OpenApiParameter.QUERY,
            enum=sorted(enum_values("TokenType")),
            description="TokenType (default RFID)",
        ),
    ]


# Examples: the demo eMSP NL*DME of `ocpi_demo` / `scripts/run`; PUT issues a new card, never replaces a demo one.
_PATH, _NEW_PATH = _path("DME0001A1"), _path("DME-EXAMPLE-01")
_TOKEN_EXAMPLE = OpenApiExample(
    "New RFID card",
    value={
        "country_code": "NL",
        "party_id": "DME",
        "uid": "DME-EXAMPLE-01",
        "type": "RFID",
        "contract_id": "NLDMEC00000099",
        "visual_number": "DEMO-CARD-99",
        "issuer": "Demo Mobility",
        "valid": True,
        "whitelist": "ALLOWED",
        "language": "en",
    },
    request_only=True,
)
_ACTIONS = {"block": {"valid": False}, "unblock": {"valid": True}}
_VERBS = ("block", "unblock", "expire")


def _request_schema() -> dict[str, Any]:
    schema = object_schema("Token")
    schema["required"] = [name for name in schema["required"] if name != "last_updated"]
    return schema


class PlatformPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class TokenListView(APIView):
    """/api/tokens/: our own tokens (`?party=NL*ABC`, `?valid=true|false`, limit/offset)."""

    @extend_schema(
        operation_id="platform_tokens_list",
        summary="List our own tokens",
        tags=[TAG],
        parameters=[
            OpenApiParameter("party", str, description="Only this own party, as `NL*ABC`"),
            OpenApiParameter("valid", bool, description="Only valid (true) or invalid (false) tokens"),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1}, description="Page size (default 50)"),
            OpenApiParameter("offset", {"type": "integer", "minimum": 0}, description="Index of the first token"),
        ],
        responses={
            200: {
                "type": "object",
                "required": ["count", "results"],
                "properties": {
                    "count": {"type": "integer"},
                    "next": {"type": "string", "format": "uri", "nullable": True},
                    "previous": {"type": "string", "format": "uri", "nullable": True},
                    "results": {"type": "array", "items": _TOKEN},
                },
            },
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> HttpResponse:
        queryset = Token.objects.filter(partner__isnull=True)
        party = request.query_params.get("party")
        if party:
            country_code, _, party_id = party.replace("-", "*").partition("*")
            queryset = queryset.filter(country_code__iexact=country_code, party_id__iexact=party_id)
        valid = request.query_params.get("valid")
        if valid in ("true", "false"):
            queryset = queryset.filter(valid=valid == "true")
        paginator = PlatformPagination()
        page = paginator.paginate_queryset(queryset.order_by("country_code", "party_id", "uid", "type", "pk"), request)
        links = orjson.dumps(
            {"count": paginator.count, "next": paginator.get_next_link(), "previous": paginator.get_previous_link()}
        )
        results = b"[" + b",".join(token_doc(token).encode() for token in page or []) + b"]"
        return json_text_response(links[:-1] + b',"results":' + results + b"}")


def _key(request: Request, kwargs: dict[str, Any]) -> Key:
    return Key(
        kwargs["country_code"], kwargs["party_id"], kwargs["uid"], token_type_param(request.query_params.get("type"))
    )


def _own(key: Key) -> Token:
    token = token_find(key)
    if token is None or not token.is_own:
        raise UnknownToken(f"Unknown token {key.uid} of type {key.type}")
    return token


class TokenView(APIView):
    """/api/tokens/{country_code}/{party_id}/{uid}[?type=]: GET, PUT (issue or replace; pushed as a PUT)."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="platform_tokens_get",
        summary="Get one of our own tokens",
        tags=[TAG],
        parameters=_PATH,
        responses={200: _TOKEN, **_ERRORS, **_NOT_FOUND},
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        return json_text_response(token_doc(_own(_key(request, kwargs))))

    @extend_schema(
        operation_id="platform_tokens_put",
        summary="Issue or replace one of our own tokens (pushed to CPO partners)",
        tags=[TAG],
        parameters=_NEW_PATH,
        request=OpenApiRequest(_request_schema()),
        examples=[_TOKEN_EXAMPLE],
        responses={200: _TOKEN, 201: _TOKEN, **_ERRORS},
    )
    def put(self, request: Request, **kwargs: Any) -> HttpResponse:
        if not isinstance(request.data, dict):
            raise InvalidParameters("body: must be a JSON object (Token)")
        result = token_save_own(key=_key(request, kwargs), data=request.data)
        return json_text_response(
            token_doc(result.token), status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )


class TokenActionView(APIView):
    """/api/tokens/{country_code}/{party_id}/{uid}/{block|unblock|expire}[?type=]: POST; pushed as a PATCH."""

    @extend_schema(
        operation_id="platform_tokens_action",
        summary="Block, unblock or expire one of our own tokens (pushed to CPO partners)",
        tags=[TAG],
        parameters=[
            *_PATH,
            OpenApiParameter("action", str, OpenApiParameter.PATH, enum=["block", "unblock", "expire"]),
        ],
        request=None,
        responses={200: _TOKEN, **_ERRORS, **_NOT_FOUND},
    )
    def post(self, request: Request, action: str, **kwargs: Any) -> HttpResponse:
        token = _own(_key(request, kwargs))
        if action == "expire":
            result = token_expire_own(token=token)
        else:
            result = token_change_own(token=token, changes=_ACTIONS[action])
        return json_text_response(token_doc(result.token))
