"""OpenAPI descriptions shared by every OCPI endpoint: the auth scheme, the envelope, pagination, error answers.

Object schemas are built from the same definitions the validator uses (ocpi_core/spec/definitions.json), so the
documentation cannot drift from what the platform accepts.

What every operation under /ocpi/ has in common is added once, by `postprocess_ocpi_operations` (a drf-spectacular
postprocessing hook, see SPECTACULAR_SETTINGS): the `OcpiToken` security requirement, X-Request-ID /
X-Correlation-ID request and response headers, the OCPI-from/to routing headers on functional modules (REFERENCE
§2.2; configuration modules do not use them), the envelope on every error answer, required request bodies, and
endpoint paths without a trailing slash (as published in version details). A module view therefore only describes
what is its own: its success `data`, its request body and, for a Sender list, the pagination helpers below.
"""

from collections.abc import Callable
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiRequest, OpenApiResponse, extend_schema

from ocpi_core.constants import CONFIGURATION_MODULES, MESSAGE_ID_MAX
from ocpi_core.validation import _definitions, object_fields

OCPI_PREFIX = "/ocpi/"
SECURITY_SCHEME = "OcpiToken"

# What ocpi_core.envelope.parse_datetime accepts: UTC, `Z` optional, optional fraction, no numeric offset.
DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z?$"

_PRIMITIVES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "CiString": {"type": "string"},
    "URL": {"type": "string", "format": "uri", "maxLength": 255},
    "DateTime": {
        "type": "string",
        "pattern": DATETIME_PATTERN,
        "maxLength": 25,
        "example": "2015-06-29T20:39:09Z",
        "description": "OCPI DateTime, always UTC",
    },
    "number": {"type": "number"},
    "int": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "any": {},
}


def _type_schema(type_name: str, max_length: int | None = None, pattern: str | None = None) -> dict[str, Any]:
    objects, enums = _definitions()
    if type_name in objects:
        return object_schema(type_name)
    if type_name in enums:
        return {"type": "string", "enum": sorted(enums[type_name])}
    schema = dict(_PRIMITIVES.get(type_name, {}))
    if max_length is not None and type_name in ("string", "CiString"):
        schema["maxLength"] = max_length
    if pattern:
        schema["pattern"] = f"^(?:{pattern})$"
    return schema


def object_schema(type_name: str) -> dict[str, Any]:
    """JSON schema of an OCPI object from its field rules.

    Optional fields are nullable: the validator reads `null` as absent (be tolerant when reading, REFERENCE §17).
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    for rule in object_fields(type_name):
        item = _type_schema(rule.type, rule.max_length, rule.pattern.pattern if rule.pattern else None)
        if rule.card in ("*", "+"):
            item = {"type": "array", "items": item}
            if rule.card == "+":
                item["minItems"] = 1
        if rule.card in ("?", "*") and item:
            item["nullable"] = True
        properties[rule.name] = item
        if rule.card in ("1", "+"):
            required.append(rule.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def ocpi_request(type_name: str) -> OpenApiRequest:
    """Request body of an OCPI object (the hook marks OCPI request bodies required)."""
    return OpenApiRequest(object_schema(type_name))


# --- the envelope (REFERENCE §2.3) ---------------------------------------------------------------------------------


def envelope_schema(data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The response envelope around `data`; `data` is optional (absent in most error answers)."""
    properties: dict[str, Any] = {
        "status_code": {
            "type": "integer",
            "minimum": 1000,
            "maximum": 4999,
            "description": "OCPI status code: 1xxx success, 2xxx client errors, 3xxx server errors, 4xxx hub errors",
        },
        "status_message": {"type": "string"},
        "timestamp": {**_PRIMITIVES["DateTime"], "description": "When the answer was generated"},
    }
    if data is not None:
        properties = {"data": data, **properties}
    return {"type": "object", "properties": properties, "required": ["status_code", "timestamp"]}


# Every HTTP error an OCPI endpoint can answer, always with an envelope (middleware and ocpi_error_response). The hook
# adds them to every /ocpi/ operation as references to components.responses; a view documents one itself only to
# say something more specific (e.g. 404 with 2003 for an unknown location).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Body that is not JSON, or a URL holding a NUL character (OCPI 2001)",
    401: "Missing, unknown or unsuitable token (OCPI 2000); `WWW-Authenticate: Token`",
    403: "Forbidden (OCPI 2000)",
    404: "Unknown object or endpoint (OCPI 2000, or the module's unknown-object code)",
    405: "Method not allowed in the partner's current state (OCPI 2000)",
    413: "Request body larger than OCPI_MAX_BODY_SIZE (OCPI 2000)",
    415: "Request body that is not JSON (OCPI 2001)",
    500: "Unexpected server error (OCPI 3000); logged, never a stack trace",
}
ERROR_RESPONSES: dict[int, OpenApiResponse] = {
    code: OpenApiResponse(response=envelope_schema({}), description=f"OCPI envelope: {text}")
    for code, text in ERROR_DESCRIPTIONS.items()
}
SUCCESS_DESCRIPTION = (
    "OCPI envelope. HTTP 200 also carries the errors of the OCPI layer (a request that is valid JSON and "
    "authenticated: status_codes), without `data`: 2xxx (e.g. 2001 invalid or missing parameters, a PATCH without "
    "`last_updated`) and 3xxx (e.g. 3001 unable to use the client's API)."
)


def ocpi_responses(data: dict[str, Any] | None, *, created: bool = False) -> dict[int, Any]:
    """The success envelope with `data` (the hook adds every error answer, see ERROR_DESCRIPTIONS)."""
    success = OpenApiResponse(response=envelope_schema(data), description=SUCCESS_DESCRIPTION)
    responses: dict[int, Any] = {200: success}
    if created:
        responses[201] = success
    return responses


# --- pagination of Sender lists (REFERENCE §2.7, ocpi_core/pagination.py) ------------------------------------------

PAGINATION_QUERY_PARAMETERS = [
    OpenApiParameter(
        "date_from",
        {"type": "string", "pattern": DATETIME_PATTERN},
        description="Only objects with last_updated >= date_from (OCPI DateTime, UTC)",
    ),
    OpenApiParameter(
        "date_to",
        {"type": "string", "pattern": DATETIME_PATTERN},
        description="Only objects with last_updated < date_to (OCPI DateTime, UTC)",
    ),
    OpenApiParameter(
        "offset", {"type": "integer", "minimum": 0}, description="Index of the first object to return (default 0)"
    ),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 0},
        description="Page size wanted; capped by the server at X-Limit (default: X-Limit)",
    ),
    OpenApiParameter(
        "cursor",
        str,
        description="Opaque position carried by the `Link` of the previous page; follow Link rather than set it",
    ),
]
PAGINATION_RESPONSE_HEADERS = [
    OpenApiParameter(
        "X-Total-Count",
        {"type": "integer", "minimum": 0},
        OpenApiParameter.HEADER,
        response=[200],
        description="Number of objects matching the request's date window, over all pages (on every page: an "
        "OCPI-layer error answered with HTTP 200, such as 2001 for a bad paging parameter, has no page and none)",
    ),
    OpenApiParameter(
        "X-Limit",
        {"type": "integer", "minimum": 1},
        OpenApiParameter.HEADER,
        response=[200],
        description="Largest page size the server returns (OCPI_MAX_PAGE_LIMIT; on every page, as X-Total-Count)",
    ),
    OpenApiParameter(
        "Link",
        str,
        OpenApiParameter.HEADER,
        response=[200],
        description='`<url>; rel="next"` while more objects follow; absent on the last page',
    ),
]
PAGINATION_PARAMETERS = [*PAGINATION_QUERY_PARAMETERS, *PAGINATION_RESPONSE_HEADERS]


def ocpi_list_responses(item_schema: dict[str, Any]) -> dict[int, Any]:
    """Responses of a paginated Sender list: `data` is a page of `item_schema` objects.

    Use with PAGINATION_PARAMETERS, which add the query parameters and the X-Total-Count / X-Limit / Link headers
    of the 200 answer; `ocpi_list` does both.
    """
    return ocpi_responses({"type": "array", "items": item_schema})


def ocpi_list(item_schema: dict[str, Any], **kwargs: Any) -> Callable[..., Any]:
    """`extend_schema` for a Sender list: pagination parameters and headers, and a list of `item_schema`."""
    parameters = [*PAGINATION_PARAMETERS, *kwargs.pop("parameters", [])]
    return extend_schema(parameters=parameters, responses=ocpi_list_responses(item_schema), **kwargs)


# --- object schemas of the configuration modules ----------------------------------------------------------------

versions_response = ocpi_responses({"type": "array", "items": object_schema("Version")})
version_details_response = ocpi_responses(object_schema("VersionDetails"))
credentials_response = ocpi_responses(object_schema("Credentials"))
empty_response = ocpi_responses(None)
CREDENTIALS_REQUEST = ocpi_request("Credentials")


# --- authentication ---------------------------------------------------------------------------------------------


class OcpiTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <base64(token)>` (REFERENCE §2.1)."""

    target_class = "ocpi_core.authentication.OcpiTokenAuthentication"
    name = SECURITY_SCHEME

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <base64 of the credentials token>`; the raw token is accepted from older peers.",
        }


# --- what every operation under /ocpi/ shares (postprocessing hook) -------------------------------------------------

_ID_HEADERS: dict[str, str] = {
    "X-Request-ID": "Unique id of this request; echoed in the answer (one is generated when absent or invalid)",
    "X-Correlation-ID": "Id shared by every request of one flow; echoed in the answer (generated when absent)",
}
_ROUTING_HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
    "OCPI-from-country-code": ("Country code of the party sending the request", {"minLength": 2, "maxLength": 2}),
    "OCPI-from-party-id": ("Party id of the party sending the request", {"minLength": 3, "maxLength": 3}),
    "OCPI-to-country-code": ("Country code of the party the request is for", {"minLength": 2, "maxLength": 2}),
    "OCPI-to-party-id": ("Party id of the party the request is for", {"minLength": 3, "maxLength": 3}),
}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _components() -> dict[str, dict[str, Any]]:
    """Shared parameters, headers and error responses, referenced from every /ocpi/ operation."""
    parameters: dict[str, Any] = {}
    headers: dict[str, Any] = {}
    for name, text in _ID_HEADERS.items():
        parameters[name] = {
            "name": name,
            "in": "header",
            "required": False,
            "description": f"{text}; up to {MESSAGE_ID_MAX} printable ASCII characters, others are replaced",
            "schema": {"type": "string"},
        }
        headers[name] = {"required": True, "description": text, "schema": {"type": "string"}}
    for name, (text, limits) in _ROUTING_HEADERS.items():
        parameters[name] = {
            "name": name,
            "in": "header",
            "required": False,
            "description": f"{text}; functional modules only (send both headers of a pair, or neither)",
            "schema": {"type": "string", **limits},
        }
        # The request's routing headers come back swapped: `from` becomes `to` (REFERENCE §2.10).
        headers[name] = {
            "required": False,
            "description": "Routing header of the answer (the request's pair, swapped)",
            "schema": {"type": "string", **limits},
        }
    responses = {
        f"OcpiError{code}": {
            "description": f"OCPI envelope: {text}",
            "content": {"application/json": {"schema": _ref("schemas", "OcpiErrorEnvelope")}},
            "headers": {name: _ref("headers", name) for name in _ID_HEADERS},
        }
        for code, text in ERROR_DESCRIPTIONS.items()
    }
    return {
        "schemas": {"OcpiErrorEnvelope": envelope_schema({})},
        "parameters": parameters,
        "headers": headers,
        "responses": responses,
    }


def _is_configuration(view_class: type | None) -> bool:
    """Configuration modules (versions, credentials, hubclientinfo) take no routing headers."""
    return getattr(view_class, "ocpi_module", None) in CONFIGURATION_MODULES


def _complete_operation(operation: dict[str, Any], *, functional: bool) -> None:
    operation["security"] = [{SECURITY_SCHEME: []}]
    header_names = [*_ID_HEADERS, *(_ROUTING_HEADERS if functional else ())]
    parameters = operation.setdefault("parameters", [])
    present = {(p.get("in"), p.get("name", "").lower()) for p in parameters}
    parameters += [_ref("parameters", n) for n in header_names if ("header", n.lower()) not in present]
    if "requestBody" in operation:
        operation["requestBody"]["required"] = True  # every OCPI request body is mandatory
    responses = operation.setdefault("responses", {})
    for response in responses.values():
        if not response.get("content"):
            response["content"] = {"application/json": {"schema": envelope_schema(None)}}
        headers = response.setdefault("headers", {})
        for name in header_names:
            headers.setdefault(name, _ref("headers", name))
    for code in ERROR_DESCRIPTIONS:
        responses.setdefault(str(code), _ref("responses", f"OcpiError{code}"))


def postprocess_ocpi_operations(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular hook: complete every operation under /ocpi/ with what all OCPI endpoints share."""
    views: dict[tuple[str, str], type | None] = {}
    for path, _regex, method, callback in getattr(generator, "endpoints", None) or []:
        views[(path, method.lower())] = getattr(callback, "cls", None)
    paths: dict[str, Any] = {}
    found = False
    for path, item in result.get("paths", {}).items():
        if not path.startswith(OCPI_PREFIX):
            paths[path] = item
            continue
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                found = True
                _complete_operation(operation, functional=not _is_configuration(views.get((path, method))))
        # Published endpoint URLs have no trailing slash (both forms are served, REFERENCE §2.9).
        target = paths.setdefault(path.rstrip("/"), {})
        for method, operation in item.items():
            target.setdefault(method, operation)
    result["paths"] = paths
    if found:
        components = result.setdefault("components", {})
        for kind, entries in _components().items():
            section = components.setdefault(kind, {})
            for name, entry in entries.items():
                section.setdefault(name, entry)
    return result
