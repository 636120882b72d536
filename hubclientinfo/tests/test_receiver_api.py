"""HubClientInfo Receiver /ocpi/2.2.1/hubclientinfo/{country_code}/{party_id} through real HTTP (REFERENCE §13.1):
the hub PUTs ClientInfo and GETs it back; everyone else is refused; every error answers an envelope and leaves what
is stored as it was; a configuration module carries no routing headers."""

from typing import Any

import pytest

from conftest import make_partner
from hubclientinfo.models import ClientInfo
from ocpi_core.constants import Role

URL = "/ocpi/2.2.1/hubclientinfo"


@pytest.fixture
def hub(own_parties: Any) -> tuple[Any, str]:
    """A registered hub partner (HUB role) with an eMSP behind it."""
    return make_partner(name="hub", roles=(("NL", "HUB", Role.HUB), ("DE", "ABC", Role.EMSP)))


def info(status: str = "CONNECTED", stamp: str = "2024-01-01T10:00:00Z", **changes: Any) -> dict[str, Any]:
    return {"party_id": "ABC", "country_code": "DE", "role": "EMSP", "status": status, "last_updated": stamp, **changes}


def stored() -> list[tuple[Any, ...]]:
    return sorted(ClientInfo.objects.values_list("partner_id", "country_code", "party_id", "role", "status"))


def assert_envelope(response: Any, http_status: int, status_code: int, *words: str) -> None:
    body = response.json()
    assert (response.status_code, body["status_code"]) == (http_status, status_code), response.text
    assert "timestamp" in body
    for word in words:
        assert word in body.get("status_message", ""), body


def test_hub_puts_then_gets_client_info(ocpi, hub):
    partner, token = hub

    put = ocpi(token).put(f"{URL}/DE/ABC", json=info("PLANNED"))
    got = ocpi(token).get(f"{URL}/de/abc")  # CiStrings: any case

    assert_envelope(put, 201, 1000)
    assert "data" not in put.json()
    assert_envelope(got, 200, 1000)
    assert got.json()["data"] == info("PLANNED")
    assert stored() == [(partner.pk, "DE", "ABC", "EMSP", "PLANNED")]


def test_newer_put_replaces_and_older_put_is_ignored(ocpi, hub):
    partner, token = hub
    ocpi(token).put(f"{URL}/DE/ABC", json=info("PLANNED"))

    newer = ocpi(token).put(f"{URL}/DE/ABC/", json=info("OFFLINE", "2024-01-02T10:00:00Z"))
    older = ocpi(token).put(f"{URL}/DE/ABC", json=info("CONNECTED", "2024-01-01T12:00:00Z"))

    assert_envelope(newer, 200, 1000)
    assert_envelope(older, 200, 1000)  # acknowledged, not applied
    assert stored() == [(partner.pk, "DE", "ABC", "EMSP", "OFFLINE")]
    assert ocpi(token).get(f"{URL}/DE/ABC").json()["data"]["last_updated"] == "2024-01-02T10:00:00Z"


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00Z", "0999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"])
def test_a_stamp_at_the_ends_of_the_calendar_is_read_back_as_an_ocpi_datetime(ocpi, hub, stamp):
    # the year was written without its leading zeros: 0001-01-01 came back as "1-01-01T00:00:00Z", no OCPI DateTime
    _, token = hub

    assert_envelope(ocpi(token).put(f"{URL}/DE/ABC", json=info(stamp=stamp)), 201, 1000)

    assert ocpi(token).get(f"{URL}/DE/ABC").json()["data"]["last_updated"] == stamp


def test_each_role_of_a_party_is_kept_and_get_answers_the_latest(ocpi, hub):
    _, token = hub
    ocpi(token).put(f"{URL}/DE/ABC", json=info("CONNECTED"))
    ocpi(token).put(f"{URL}/DE/ABC", json=info("SUSPENDED", "2024-02-01T00:00:00Z", role="CPO"))

    got = ocpi(token).get(f"{URL}/DE/ABC").json()["data"]

    assert ClientInfo.objects.count() == 2
    assert (got["role"], got["status"]) == ("CPO", "SUSPENDED")


def test_a_partner_that_is_no_hub_is_refused(ocpi, hub):
    _, emsp_token = make_partner(name="emsp", roles=(("DE", "ABC", Role.EMSP),))

    put = ocpi(emsp_token).put(f"{URL}/DE/ABC", json=info())
    got = ocpi(emsp_token).get(f"{URL}/DE/ABC")

    assert_envelope(put, 403, 2000, "hub")
    assert_envelope(got, 403, 2000, "hub")
    assert stored() == []


@pytest.mark.parametrize(
    ("url", "body", "words"),
    [
        ("DE/ABC", {k: v for k, v in info().items() if k != "last_updated"}, ["last_updated: is required"]),
        ("DE/ABC", info(status="ONLINE"), ["status: must be one of the ConnectionStatus values"]),
        ("DE/ABC", info(role="DRIVER"), ["role: must be one of the Role values"]),
        ("DE/ABC", info(party_id="ABCD"), ["party_id: must be at most 3 characters"]),
        ("DE/ABC", info(last_updated="2024-01-01T10:00:00+01:00"), ["last_updated: must be an OCPI DateTime"]),
        ("DE/XYZ", info(), ["party_id: 'ABC' does not match the URL's 'XYZ'"]),
        ("NL/ABC", info(), ["country_code: 'DE' does not match"]),
        ("DEU/ABC", info(), ["country_code (URL)"]),
        ("DE/ABC", ["not", "an", "object"], ["body: must be a JSON object"]),
    ],
)
def test_invalid_put_is_2001_naming_the_field_and_changes_nothing(ocpi, hub, url, body, words):
    _, token = hub
    ocpi(token).put(f"{URL}/DE/ABC", json=info("OFFLINE"))
    before = stored()

    response = ocpi(token).put(f"{URL}/{url}", json=body)

    assert_envelope(response, 200, 2001, *words)
    assert stored() == before


def test_malformed_json_is_2001(ocpi, hub):
    _, token = hub

    response = ocpi(token).put(f"{URL}/DE/ABC", content=b"{not json", headers={"Content-Type": "application/json"})

    assert_envelope(response, 400, 2001)
    assert stored() == []


def test_unknown_client_info_is_404(ocpi, hub):
    _, token = hub

    assert_envelope(ocpi(token).get(f"{URL}/DE/ABC"), 404, 2000, "Unknown ClientInfo")


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_other_methods_are_405(ocpi, hub, method):
    _, token = hub
    ocpi(token).put(f"{URL}/DE/ABC", json=info())

    response = ocpi(token).request(method, f"{URL}/DE/ABC", json=info("SUSPENDED", "2025-01-01T00:00:00Z"))

    assert_envelope(response, 405, 2000)
    assert stored()[0][4] == "CONNECTED"


def test_no_token_is_401(ocpi, hub):
    assert_envelope(ocpi().put(f"{URL}/DE/ABC", json=info()), 401, 2000)
    assert stored() == []


def test_configuration_module_ignores_and_sends_no_routing_headers(ocpi, hub):
    _, token = hub
    headers = {"OCPI-from-country-code": "NL", "OCPI-from-party-id": "HUB", "OCPI-to-country-code": "X"}

    response = ocpi(token).put(f"{URL}/DE/ABC", json=info(), headers=headers)  # a broken pair: ignored here

    assert_envelope(response, 201, 1000)
    assert not [name for name in response.headers if name.lower().startswith("ocpi-")]


def test_version_details_list_the_receiver(ocpi, hub, ocpi_base_url):
    _, token = hub

    endpoints = ocpi(token).get("/ocpi/2.2.1").json()["data"]["endpoints"]

    assert {"identifier": "hubclientinfo", "role": "RECEIVER", "url": f"{ocpi_base_url}{URL}"} in endpoints
