"""Tokens interfaces (REFERENCE §10.2, §10.3): eMSP Sender (our own tokens, real-time authorize) and CPO Receiver
(partners' tokens). Note the role inversion: the eMSP sends, the CPO receives."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiRequest, OpenApiResponse, extend_schema
from rest_framework.request import Request

from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import envelope_schema, object_schema, ocpi_list, ocpi_request, ocpi_responses
from ocpi_core.authentication import request_auth
from ocpi_core.constants import ModuleID, Role
from ocpi_core.envelope import OcpiResponse, raw_data_response
from ocpi_core.pagination import paginate
from ocpi_core.selectors import own_parties_for_request
from tokens.services import Key, token_authorize_as_emsp, token_get, token_patch, token_put, token_type_param

_TAGS = ["OCPI tokens"]
_TYPE = OpenApiParameter(
    "type",
    {"type": "string", "enum": ["AD_HOC_USER", "APP_USER", "OTHER", "RFID"], "default": "RFID"},
    OpenApiParameter.QUERY,
    description="TokenType: a token is keyed by uid and type; RFID when absent (REFERENCE §10.2).",
)
_UNKNOWN = {404: OpenApiResponse(response=envelope_schema({}), description="OCPI envelope: unknown token (2004)")}


class TokenSenderListView(OcpiAPIView):
    """GET /ocpi/2.2.1/emsp/tokens: our own tokens, paginated (the cached JSON is joined, never re-rendered)."""

    ocpi_module = ModuleID.TOKENS

    @ocpi_list(object_schema("Token"), operation_id="ocpi_emsp_tokens_list", tags=_TAGS)
    def get(self, request: Request) -> Any:
        from tokens.services import tokens_own

        parties = own_parties_for_request(routing=self.routing, role=Role.EMSP)
        queryset = tokens_own(parties=parties).only("pk", "last_updated", "doc")
        page = paginate(queryset, request.query_params, request.path)
        body = b"[" + b",".join(token.doc.encode() for token in page.objects) + b"]"
        return raw_data_response(body, headers=page.headers)


class TokenAuthorizeView(OcpiAPIView):
    """POST /ocpi/2.2.1/emsp/tokens/{token_uid}/authorize[?type=]: real-time authorization of one of our tokens."""

    ocpi_module = ModuleID.TOKENS
    http_method_names = ["post"]

    @extend_schema(
        operation_id="ocpi_emsp_tokens_authorize",
        tags=_TAGS,
        parameters=[_TYPE],
        request=OpenApiRequest(object_schema("LocationReferences")),
        responses={**ocpi_responses(object_schema("AuthorizationInfo")), **_UNKNOWN},
        description="Blocked, expired, no-credit or not-allowed tokens are answered with HTTP 200 and an "
        "AuthorizationInfo; an unknown token with HTTP 404 and 2004; 2002 when the token needs a location.",
    )
    def post(self, request: Request, token_uid: str) -> OcpiResponse:
        token_type = token_type_param(request.query_params.get("type"))
        parties = own_parties_for_request(routing=self.routing, role=Role.EMSP)
        data = token_authorize_as_emsp(
            partner=request_auth(request).partner,
            parties=parties,
            uid=token_uid,
            token_type=token_type,
            body=request.data,
        )
        return OcpiResponse(data)


class TokenReceiverView(OcpiAPIView):
    """/ocpi/2.2.1/cpo/tokens/{country_code}/{party_id}/{token_uid}[?type=]: GET what we hold, PUT creates or
    replaces, PATCH merges (no POST, no DELETE: tokens are invalidated, never deleted)."""

    ocpi_module = ModuleID.TOKENS
    http_method_names = ["get", "put", "patch", "head"]

    def _key(self, request: Request, kwargs: dict[str, Any]) -> Key:
        token_type = token_type_param(request.query_params.get("type"))
        return Key(kwargs["country_code"], kwargs["party_id"], kwargs["token_uid"], token_type)

    @extend_schema(
        operation_id="ocpi_cpo_tokens_get",
        tags=_TAGS,
        parameters=[_TYPE],
        responses={**ocpi_responses(object_schema("Token")), **_UNKNOWN},
    )
    def get(self, request: Request, **kwargs: Any) -> Any:
        doc = token_get(partner=request_auth(request).partner, key=self._key(request, kwargs))
        return raw_data_response(doc.encode())

    @extend_schema(
        operation_id="ocpi_cpo_tokens_put",
        tags=_TAGS,
        parameters=[_TYPE],
        request=ocpi_request("Token"),
        responses=ocpi_responses(None, created=True),
    )
    def put(self, request: Request, **kwargs: Any) -> OcpiResponse:
        result = token_put(partner=request_auth(request).partner, key=self._key(request, kwargs), data=request.data)
        return OcpiResponse(http_status=201 if result.created else 200)

    @extend_schema(
        operation_id="ocpi_cpo_tokens_patch",
        tags=_TAGS,
        parameters=[_TYPE],
        request=ocpi_request("Token"),
        responses={**ocpi_responses(None), **_UNKNOWN},
    )
    def patch(self, request: Request, **kwargs: Any) -> OcpiResponse:
        token_patch(partner=request_auth(request).partner, key=self._key(request, kwargs), data=request.data)
        return OcpiResponse()
