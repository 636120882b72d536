"""The OpenAPI document (/api/schema/, /api/docs/): valid, and describing what the OCPI API really does.

The fuzzing in test_fuzz_ocpi.py then holds the running API to this document.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.test import Client
from django.urls import re_path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.request import Request

from conftest import REPO, auth_header, make_partner
from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import object_schema, ocpi_list, ocpi_list_responses
from ocpi_core.envelope import OcpiResponse
from ocpi_core.models import Party
from ocpi_core.pagination import paginate

ID_HEADERS = {"X-Request-ID", "X-Correlation-ID"}
ROUTING_HEADERS = {"OCPI-from-country-code", "OCPI-from-party-id", "OCPI-to-country-code", "OCPI-to-party-id"}
ERROR_STATUSES = {"400", "401", "403", "404", "405", "413", "415", "500"}


def resolve(schema: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (components) until a concrete object."""
    while "$ref" in item:
        node: Any = schema
        for part in item["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        item = node
    return item


def ocpi_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith("/ocpi/")
        for method, operation in item.items()
    ]


def header_names(schema: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    parameters = [resolve(schema, p) for p in operation.get("parameters", [])]
    return {p["name"] for p in parameters if p["in"] == "header"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The schema as drf-spectacular generates it for this deployment (what /api/schema/ serves)."""
    return SchemaGenerator().get_schema(request=None, public=True)


def test_spectacular_validate_fail_on_warn(tmp_path: Path) -> None:
    # the command CI runs: no warning, a valid OpenAPI 3 document
    out = tmp_path / "schema.yaml"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(out.read_text())
    assert document["openapi"].startswith("3.")
    assert {"/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials"} <= set(document["paths"])


def test_ocpi_paths_are_published_without_trailing_slash(schema: dict[str, Any]) -> None:
    paths = [path for path in schema["paths"] if path.startswith("/ocpi/")]
    assert paths
    assert all(not path.endswith("/") for path in paths)
    assert set(schema["paths"]["/ocpi/2.2.1/credentials"]) == {"get", "post", "put", "delete"}


def test_every_ocpi_operation_requires_the_ocpi_token(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["OcpiToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    for path, method, operation in ocpi_operations(schema):
        assert operation["security"] == [{"OcpiToken": []}], (method, path)


def test_every_ocpi_response_is_an_envelope_with_request_ids(schema: dict[str, Any]) -> None:
    for path, method, operation in ocpi_operations(schema):
        responses = operation["responses"]
        assert set(responses) >= ERROR_STATUSES, (method, path)
        assert "200" in responses
        for status, response in responses.items():
            response = resolve(schema, response)
            body = resolve(schema, response["content"]["application/json"]["schema"])
            assert body["type"] == "object"
            assert set(body["required"]) == {"status_code", "timestamp"}, (method, path, status)
            assert body["properties"]["status_code"]["type"] == "integer"
            headers = {name: resolve(schema, h) for name, h in response["headers"].items()}
            assert all(headers[name]["required"] for name in ID_HEADERS), (method, path, status)


def test_request_ids_are_optional_request_headers_everywhere(schema: dict[str, Any]) -> None:
    for path, method, operation in ocpi_operations(schema):
        parameters = {resolve(schema, p)["name"]: resolve(schema, p) for p in operation["parameters"]}
        for name in ID_HEADERS:
            assert parameters[name]["in"] == "header"
            assert parameters[name]["required"] is False, (method, path, name)


def test_configuration_modules_take_no_routing_headers(schema: dict[str, Any]) -> None:
    # versions and credentials are configuration modules (REFERENCE §2.2): no OCPI-from/to headers
    for path in ("/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials"):
        for operation in schema["paths"][path].values():
            assert not header_names(schema, operation) & ROUTING_HEADERS


def test_credentials_request_body_is_the_credentials_object(schema: dict[str, Any]) -> None:
    for method in ("post", "put"):
        body = schema["paths"]["/ocpi/2.2.1/credentials"][method]["requestBody"]
        assert body["required"] is True
        credentials = body["content"]["application/json"]["schema"]
        assert set(credentials["required"]) == {"token", "url", "roles"}
        assert credentials["properties"]["token"]["maxLength"] == 64
        assert credentials["properties"]["roles"]["minItems"] == 1
        role = credentials["properties"]["roles"]["items"]
        assert set(role["required"]) == {"role", "business_details", "party_id", "country_code"}
        assert "CPO" in role["properties"]["role"]["enum"]


def test_credentials_response_data_is_the_credentials_object(schema: dict[str, Any]) -> None:
    response = schema["paths"]["/ocpi/2.2.1/credentials"]["get"]["responses"]["200"]
    data = response["content"]["application/json"]["schema"]["properties"]["data"]
    assert set(data["required"]) == {"token", "url", "roles"}


def test_platform_api_uses_jwt_bearer(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["jwtAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert schema["paths"]["/api/"]["get"]["security"] == [{"jwtAuth": []}]
    assert "/api/token/" in schema["paths"]
    assert "/api/token/refresh/" in schema["paths"]


def test_schema_endpoint_serves_the_schema(client: Client) -> None:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    document = response.json()
    assert "/ocpi/2.2.1/credentials" in document["paths"]
    assert document["info"]["title"] == "OCPI 2.2.1 roaming platform"

    default = client.get("/api/schema/")  # YAML by default
    assert default.status_code == 200
    assert "/ocpi/2.2.1/credentials" in yaml.safe_load(default.content)["paths"]


def test_swagger_ui_loads(client: Client) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    assert "/api/schema/" in html


# --- the Sender-list helpers: no module uses them yet, so prove them on a throwaway Sender list ---------------------


class PartySenderView(OcpiAPIView):
    """A paginated Sender list of our own parties (as CredentialsRole objects), built like a module's list."""

    ocpi_module = "locations"  # a functional module: routing headers apply

    @ocpi_list(object_schema("CredentialsRole"), operation_id="test_parties_list")
    def get(self, request: Request) -> OcpiResponse:
        page = paginate(
            Party.objects.filter(partner__isnull=True), request.query_params, request.path, date_field="updated_at"
        )
        return OcpiResponse([party.credentials_role() for party in page.objects], headers=page.headers)


urlpatterns = [re_path(r"^ocpi/2\.2\.1/parties/?$", PartySenderView.as_view())]


@pytest.fixture(scope="module")
def list_schema() -> dict[str, Any]:
    schema = SchemaGenerator(patterns=urlpatterns).get_schema(request=None, public=True)
    validate_schema(schema)  # raises on an invalid OpenAPI document
    return schema


def test_list_helpers_document_pagination(list_schema: dict[str, Any]) -> None:
    operation = list_schema["paths"]["/ocpi/2.2.1/parties"]["get"]
    parameters = [resolve(list_schema, p) for p in operation["parameters"]]
    query = {p["name"]: p for p in parameters if p["in"] == "query"}
    assert set(query) == {"date_from", "date_to", "offset", "limit", "cursor"}
    assert query["offset"]["schema"] == {"type": "integer", "minimum": 0}
    assert all(not p.get("required", False) for p in query.values())
    # functional module: routing headers and request ids are documented as optional request headers
    assert header_names(list_schema, operation) == ROUTING_HEADERS | ID_HEADERS
    headers = operation["responses"]["200"]["headers"]
    # on every page, not on an OCPI-layer error answered with HTTP 200 (2001 for a bad paging parameter): optional
    assert not headers["X-Total-Count"].get("required", False)
    assert not headers["X-Limit"].get("required", False)
    assert "on every page" in headers["X-Total-Count"]["description"]
    assert "Link" in headers
    assert set(headers) >= ROUTING_HEADERS
    data = operation["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]
    assert data["type"] == "array"
    assert set(data["items"]["required"]) == {"role", "business_details", "party_id", "country_code"}
    assert ocpi_list_responses({"type": "object"})[200].response["properties"]["data"]["items"] == {"type": "object"}


@pytest.mark.urls(__name__)
def test_list_helpers_match_a_real_paginated_answer(list_schema: dict[str, Any], own_parties: list[Party]) -> None:
    # given three own parties and a registered partner, when it reads a page of 2
    Party.objects.create(country_code="BE", party_id="THR", role="CPO", name="Third")
    _, token = make_partner()
    response = Client().get(
        "/ocpi/2.2.1/parties",
        {"limit": 2},
        HTTP_AUTHORIZATION=auth_header(token),
        HTTP_OCPI_FROM_COUNTRY_CODE="DE",
        HTTP_OCPI_FROM_PARTY_ID="PRT",
    )
    # then the answer carries every header and the body the schema documents for 200
    operation = list_schema["paths"]["/ocpi/2.2.1/parties"]["get"]
    documented = operation["responses"]["200"]
    assert response.status_code == 200
    for name, header in documented["headers"].items():
        header = resolve(list_schema, header)
        if header.get("required"):
            assert response.has_header(name), name
    assert (response["X-Total-Count"], response["X-Limit"]) == ("3", "100")
    assert 'rel="next"' in response["Link"]
    assert (response["OCPI-to-country-code"], response["OCPI-to-party-id"]) == ("DE", "PRT")
    body = response.json()
    jsonschema.validate(body, documented["content"]["application/json"]["schema"])
    assert len(body["data"]) == 2


# --- the platform API (/api/) as Swagger UI shows it to an operator's engineers ------------------------------------


def platform_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith("/api/")
        for method, operation in item.items()
    ]


def test_jwt_endpoints_are_documented_for_signing_in(schema: dict[str, Any]) -> None:
    # first tag of the document; summaries, the 401 and an example body, so Swagger UI shows how to sign in
    assert schema["tags"][0]["name"] == "Platform API: authentication"
    for path in ("/api/token/", "/api/token/refresh/"):
        operation = schema["paths"][path]["post"]
        assert operation["tags"] == ["Platform API: authentication"]
        assert operation["summary"]
        assert set(operation["responses"]) == {"200", "401"}
        assert not operation.get("security")  # no JWT needed to get one
    body = schema["paths"]["/api/token/"]["post"]["requestBody"]["content"]["application/json"]
    assert set(next(iter(body["examples"].values()))["value"]) == {"username", "password"}
    assert "Authorize" in schema["info"]["description"]


def test_every_platform_api_operation_has_a_summary_and_its_auth_errors(schema: dict[str, Any]) -> None:
    for path, method, operation in platform_operations(schema):
        assert operation.get("summary"), (method, path)
        if operation.get("security"):
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_every_platform_api_request_body_has_an_example(schema: dict[str, Any]) -> None:
    # Swagger UI's generated sample ("string" everywhere) is refused by the field rules; an example is not
    bodies = 0
    for path, method, operation in platform_operations(schema):
        content = operation.get("requestBody", {}).get("content", {})
        for media_type, media in content.items():
            if media_type == "application/json":
                bodies += 1
                assert media.get("examples"), (method, path)
    assert bodies >= 20


def test_tariff_price_documents_its_request_body(schema: dict[str, Any]) -> None:
    # the view reads its body itself (exact decimals): the body is still documented, for "Try it out"
    operation = schema["paths"]["/api/tariffs/{country_code}/{party_id}/{tariff_id}/price/"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"charging_periods", "start_date_time", "end_date_time"}


def test_location_path_parameters_are_in_url_order(schema: dict[str, Any]) -> None:
    path = "/api/locations/{country_code}/{party_id}/{location_id}/evses/{evse_uid}/status/"
    parameters = schema["paths"][path]["post"]["parameters"]
    assert [p["name"] for p in parameters] == ["country_code", "party_id", "location_id", "evse_uid"]


def _example_call(schema: dict[str, Any], operation_id: str, **path_values: str) -> tuple[str, str, Any]:
    """(method, URL, body) of an operation as Swagger UI's "Try it out" sends it with the documented examples."""
    for path, method, operation in platform_operations(schema):
        if operation["operationId"] == operation_id:
            url = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    value = path_values.get(parameter["name"])
                    value = value or next(iter(parameter["examples"].values()))["value"]
                    url = url.replace("{" + parameter["name"] + "}", value)
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            body = next(iter(content["examples"].values()))["value"] if content else None
            return method, url, body
    raise AssertionError(operation_id)


def test_platform_api_examples_work_on_the_demo_data(schema: dict[str, Any], staff: Client) -> None:
    # given the demo data scripts/run loads
    from django.core.management import call_command

    call_command("ocpi_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    # when an engineer tries the documented examples in turn, then each is accepted
    order = [
        ("platform_locations_create", 201),
        ("platform_locations_location_put", 200),
        ("platform_locations_location_patch", 200),
        ("platform_locations_evse_put", 201),
        ("platform_locations_evse_patch", 200),
        ("platform_locations_connector_put", 201),
        ("platform_locations_connector_patch", 200),
        ("platform_locations_evse_status", 200),
        ("platform_tariffs_create", 201),
        ("platform_tariffs_put", 200),
        ("platform_tariffs_price", 200),
        ("platform_tariffs_delete", 204),
        ("platform_tokens_put", 201),
        ("platform_tokens_action", 200),
    ]
    for operation_id, expected in order:
        method, url, body = _example_call(schema, operation_id, action="block")
        response = staff.generic(method.upper(), url, json.dumps(body) if body else "", "application/json")
        assert response.status_code == expected, (operation_id, response.content)

    method, url, body = _example_call(schema, "platform_sessions_start")
    started = staff.post(url, body, content_type="application/json")
    assert started.status_code == 201, started.content
    ids = {"country_code": "NL", "party_id": "DMC", "session_id": started.json()["id"]}
    for operation_id in ("platform_sessions_update", "platform_sessions_stop"):
        method, url, body = _example_call(schema, operation_id, **ids)
        response = staff.generic(method.upper(), url, json.dumps(body), "application/json")
        assert response.status_code == 200, (operation_id, response.content)


def test_command_and_charging_profile_examples_pass_the_field_rules(schema: dict[str, Any], staff: Client) -> None:
    # they name a partner by its id, which differs per deployment: only `partner` is refused, no other field
    for operation_id in ("platform_commands_send", "platform_chargingprofiles_send"):
        for path, _, operation in platform_operations(schema):
            if operation["operationId"] == operation_id:
                for example in operation["requestBody"]["content"]["application/json"]["examples"].values():
                    response = staff.post(path, example["value"], content_type="application/json")
                    assert response.status_code == 400
                    assert set(response.json()) == {"partner"}, (operation_id, response.json())
