"""Requests no OCPI object can hold although they parse: a NUL character (`%00` in a URL id, `\\u0000` in a body)
and JSON nested deeper than any OCPI object. Through real HTTP: an envelope with 2001, never a 500, and nothing
stored changes. And the rule they follow: an error of the OCPI layer (valid JSON, authenticated) is not an HTTP
error (status_codes, 2.2.1 errata), while a body that is not JSON still is (400)."""

from typing import Any

import pytest

from conftest import make_partner
from locations.models import Connector, Evse, Location
from locations.tests.factories import location_data
from ocpi_core.constants import Role
from ocpi_core.validation import MAX_BODY_DEPTH
from tariffs.models import Tariff
from tariffs.tests.factories import tariff_data

LOCATIONS, TARIFFS = "/ocpi/2.2.1/emsp/locations/DE/CPO", "/ocpi/2.2.1/emsp/tariffs/DE/CPO"
STAMP, LATER = "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"


@pytest.fixture
def cpo(own_parties: Any) -> str:
    """The token of a registered CPO partner owning DE*CPO."""
    return make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))[1]


@pytest.fixture
def stored_location(ocpi, cpo) -> tuple[Any, dict[str, Any]]:
    """A client of the CPO and its location LOC1 (EVSEs LOC1-1 ...), stored through the receiver."""
    client = ocpi(cpo)
    location = location_data("LOC1", country_code="DE", party_id="CPO", last_updated=STAMP)
    assert client.put(f"{LOCATIONS}/LOC1", json=location).status_code == 201
    return client, location


def stored() -> list[Any]:
    return [
        list(model.objects.order_by("pk").values())  # type: ignore[attr-defined]
        for model in (Location, Evse, Connector, Tariff)
    ]


def nested(depth: int) -> Any:
    """A JSON value `depth` levels deep: {"a": {"a": ... 1}}."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def assert_all_2001(answers: dict[str, Any], http_status: int, word: str) -> None:
    """Every answer an envelope with 2001, HTTP `http_status` and `word` in its message; failures named."""
    failures = []
    for name, response in answers.items():
        body = response.json()
        if (response.status_code, body["status_code"]) != (http_status, 2001) or word not in body["status_message"]:
            failures.append(f"{name}: HTTP {response.status_code} {response.text}")
        elif response.headers["content-type"] != "application/json":
            failures.append(f"{name}: {response.headers['content-type']}")
    assert not failures, "\n".join(failures)


def test_a_nul_in_a_url_id_is_2001_and_never_reaches_the_database(stored_location):
    client, _ = stored_location
    before = stored()
    status = {"status": "CHARGING", "last_updated": LATER}

    answers = {
        "sender location": client.get("/ocpi/2.2.1/cpo/locations/%00"),
        "sender evse": client.get("/ocpi/2.2.1/cpo/locations/LOC1/%00"),
        "receiver get": client.get(f"{LOCATIONS}/%00"),
        "receiver party": client.get("/ocpi/2.2.1/emsp/locations/%00/CPO/LOC1"),
        "receiver put": client.put(f"{LOCATIONS}/LOC%001", json=location_data("LOC\x001")),
        "receiver evse patch (fast path)": client.patch(f"{LOCATIONS}/LOC1/%00", json=status),
        "receiver location of an evse patch": client.patch(f"{LOCATIONS}/%00/LOC1-1", json=status),
        "tariff": client.get(f"{TARIFFS}/T%00"),
    }

    assert_all_2001(answers, 400, "NUL")
    assert stored() == before


def test_a_nul_anywhere_in_a_body_is_2001(stored_location):
    client, location = stored_location
    before = stored()
    unknown_field = {**location, "opening_times": {"twentyfourseven": True, "note": "a\x00b"}}
    unknown_key = {**location, "coordinates": {**location["coordinates"], "a\x00": 1}}
    tariff = tariff_data("T1", country_code="DE", party_id="CPO")
    tariff["elements"][0]["note"] = ["\x00"]

    answers = {
        "unknown field of a location": client.put(f"{LOCATIONS}/LOC1", json=unknown_field),
        "key of a location's coordinates": client.put(f"{LOCATIONS}/LOC1", json=unknown_key),
        "evse patch (fast path)": client.patch(
            f"{LOCATIONS}/LOC1/LOC1-1", json={"status": "CHARGING", "x": "\x00", "last_updated": LATER}
        ),
        "known field of an evse patch": client.patch(
            f"{LOCATIONS}/LOC1/LOC1-1", json={"status": "CHARGING", "floor_level": "1\x00", "last_updated": LATER}
        ),
        "unknown field in a tariff element": client.put(f"{TARIFFS}/T1", json=tariff),
    }

    assert_all_2001(answers, 200, "NUL")
    assert stored() == before


def test_json_nested_deeper_than_any_ocpi_object_is_2001(stored_location):
    client, _ = stored_location
    before = stored()
    deep_element = tariff_data("T1", country_code="DE", party_id="CPO")
    deep_element["elements"][0]["x"] = nested(300)  # past orjson's encoder (254) where the element is stored
    deep_list: Any = 0
    for _ in range(500):  # past Python's recursion limit where unknown fields are walked
        deep_list = [deep_list]
    deep_top = {**tariff_data("T2", country_code="DE", party_id="CPO"), "x": deep_list}
    evse_patch = {"status": "CHARGING", "last_updated": LATER, "x": nested(MAX_BODY_DEPTH)}

    answers = {
        "element of a tariff": client.put(f"{TARIFFS}/T1", json=deep_element),
        "top level of a tariff": client.put(f"{TARIFFS}/T2", json=deep_top),
        "evse patch (fast path)": client.patch(f"{LOCATIONS}/LOC1/LOC1-1", json=evse_patch),
    }

    assert_all_2001(answers, 200, f"more than {MAX_BODY_DEPTH} levels")
    assert stored() == before


def test_nesting_within_the_limit_is_stored_and_served(ocpi, cpo):
    client = ocpi(cpo)
    data = tariff_data("T1", country_code="DE", party_id="CPO")
    data["elements"][0]["x"] = nested(MAX_BODY_DEPTH - 4)  # body, elements, the element, x: at the limit

    put = client.put(f"{TARIFFS}/T1", json=data)
    got = client.get(f"{TARIFFS}/T1")

    assert (put.status_code, put.json()["status_code"]) == (201, 1000), put.text
    assert (got.status_code, got.json()["status_code"]) == (200, 1000), got.text


def test_invalid_content_is_an_ocpi_error_and_invalid_json_an_http_one(stored_location):
    client, _ = stored_location
    before = stored()

    no_stamp = client.patch(f"{LOCATIONS}/LOC1/LOC1-1", json={"status": "CHARGING"})  # the spec's 2001 example
    bad_enum = client.patch(f"{LOCATIONS}/LOC1", json={"parking_type": "ROOF", "last_updated": LATER})
    bad_limit = client.get("/ocpi/2.2.1/cpo/locations", params={"limit": "-1"})
    not_json = client.patch(
        f"{LOCATIONS}/LOC1/LOC1-1", content=b'{"status": ', headers={"Content-Type": "application/json"}
    )

    assert_all_2001({"no last_updated": no_stamp}, 200, "last_updated")
    assert_all_2001({"bad enum": bad_enum}, 200, "parking_type")
    assert_all_2001({"bad limit": bad_limit}, 200, "limit")
    assert_all_2001({"not JSON": not_json}, 400, "JSON")
    assert stored() == before
