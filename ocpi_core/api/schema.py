"""OpenAPI descriptions shared by every OCPI endpoint: the auth scheme, the envelope, pagination, error answers.

Object schemas are built from the same definitions the validator uses (ocpi_core/spec/definitions.json), so the
documentation cannot drift from what the platform accepts.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from ocpi_core.validation import _definitions, object_fields

_PRIMITIVES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "CiString": {"type": "string"},
    "URL": {"type": "string", "maxLength": 255},
    "DateTime": {"type": "string", "example": "2015-06-29T20:39:09Z", "maxLength": 25},
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
    """JSON schema of an OCPI object from its field rules."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for rule in object_fields(type_name):
        item = _type_schema(rule.type, rule.max_length, rule.pattern.pattern if rule.pattern else None)
        if rule.card in ("*", "+"):
            item = {"type": "array", "items": item}
            if rule.card == "+":
                item["minItems"] = 1
        properties[rule.name] = item
        if rule.card in ("1", "+"):
            required.append(rule.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def envelope_schema(data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The response envelope (REFERENCE §2.3) around `data`."""
    properties: dict[str, Any] = {
        "status_code": {"type": "integer", "description": "OCPI status code (1xxx success, 2xxx/3xxx errors)"},
        "status_message": {"type": "string"},
        "timestamp": {"type": "string", "example": "2015-06-30T21:59:59Z"},
    }
    if data is not None:
        properties = {"data": data, **properties}
    return {"type": "object", "properties": properties, "required": ["status_code", "timestamp"]}


ERROR_ENVELOPE = OpenApiResponse(response=envelope_schema({}), description="OCPI envelope with an error status code")
ERROR_RESPONSES = {code: ERROR_ENVELOPE for code in (400, 401, 403, 404, 405, 413, 415, 500)}


def ocpi_responses(data: dict[str, Any] | None, *, created: bool = False) -> dict[int, Any]:
    """Success envelope with `data` plus every error answer an OCPI endpoint can give."""
    success = OpenApiResponse(response=envelope_schema(data), description="OCPI envelope")
    responses: dict[int, Any] = {200: success, **ERROR_RESPONSES}
    if created:
        responses[201] = success
    return responses


versions_response = ocpi_responses({"type": "array", "items": object_schema("Version")})
version_details_response = ocpi_responses(object_schema("VersionDetails"))
credentials_response = ocpi_responses(object_schema("Credentials"))
empty_response = ocpi_responses(None)
CREDENTIALS_REQUEST = object_schema("Credentials")

PAGINATION_PARAMETERS = [
    OpenApiParameter("date_from", str, description="Only objects with last_updated >= date_from (OCPI DateTime)"),
    OpenApiParameter("date_to", str, description="Only objects with last_updated < date_to (OCPI DateTime)"),
    OpenApiParameter("offset", int, description="Index of the first object (default 0)"),
    OpenApiParameter("limit", int, description="Page size wanted; capped by the server (see X-Limit)"),
]


class OcpiTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <base64(token)>` (REFERENCE §2.1)."""

    target_class = "ocpi_core.authentication.OcpiTokenAuthentication"
    name = "OcpiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <base64 of the credentials token>`; the raw token is accepted from older peers.",
        }
