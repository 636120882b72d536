"""CPO Sender GET /ocpi/2.2.1/cpo/tariffs through real HTTP (REFERENCE §9.2, §2.7): only our own tariffs of the
CPO party the request is for, paginated with Link / X-Total-Count / X-Limit, date_from inclusive and date_to
exclusive, served from the cached JSON."""

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Party
from tariffs.services import Key, tariff_put
from tariffs.tests.factories import own_tariff, tariff_data

URL = "/ocpi/2.2.1/cpo/tariffs"


@pytest.fixture
def emsp(own_parties: Any) -> str:
    """The token of a registered eMSP partner."""
    return make_partner(name="emsp", roles=(("DE", "EMS", Role.EMSP),))[1]


def ids(response: httpx.Response) -> list[str]:
    body = response.json()
    assert (response.status_code, body["status_code"]) == (200, 1000), response.text
    return [item["id"] for item in body["data"]]


def test_lists_only_our_own_tariffs_as_stored(ocpi, ocpi_base_url, emsp):
    own = own_tariff("OWN1", type="REGULAR")
    cpo, _ = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    tariff_put(
        partner=cpo, key=Key("DE", "CPO", "THEIRS"), data=tariff_data("THEIRS", country_code="DE", party_id="CPO")
    )

    response = ocpi(emsp).get(URL)

    assert ids(response) == ["OWN1"]
    assert response.json()["data"][0] == tariff_data("OWN1", type="REGULAR")
    assert response.text.count(own.doc) == 1  # served from the cached JSON
    assert response.headers["X-Total-Count"] == "1"
    assert "Link" not in response.headers


def test_empty_list_has_headers_and_no_link(ocpi, ocpi_base_url, emsp):
    response = ocpi(emsp).get(URL)

    assert ids(response) == []
    assert response.headers["X-Total-Count"] == "0"
    assert int(response.headers["X-Limit"]) > 0
    assert "Link" not in response.headers


def test_pages_follow_the_link_header_in_last_updated_order(ocpi, ocpi_base_url, emsp):
    for n in range(5):
        own_tariff(f"T{n}", last_updated=f"2024-01-0{5 - n}T00:00:00Z")  # T4 oldest ... T0 newest
    client = ocpi(emsp)

    seen: list[str] = []
    response = client.get(URL, params={"limit": 2})
    pages = 1
    while True:
        seen += ids(response)
        assert response.headers["X-Total-Count"] == "5"
        link = response.headers.get("Link")
        if link is None:
            break
        assert link.endswith('>; rel="next"')
        assert "limit=2" in link
        response = client.get(link[1 : link.index(">")])
        pages += 1

    assert seen == ["T4", "T3", "T2", "T1", "T0"]
    assert pages == 3


def test_offset_keeps_its_meaning(ocpi, ocpi_base_url, emsp):
    for n in range(4):
        own_tariff(f"T{n}", last_updated=f"2024-01-0{n + 1}T00:00:00Z")

    response = ocpi(emsp).get(URL, params={"offset": 1, "limit": 2})

    assert ids(response) == ["T1", "T2"]
    assert "offset=3" in response.headers["Link"]


def test_a_link_with_another_offset_is_served_from_that_offset(ocpi, ocpi_base_url, emsp):
    """The Link's cursor continues the page it was written for only; the spec's recovery when X-Total-Count
    shrinks, "redo the previous GET with the offset lowered by 1" (transport_and_format), must get that offset."""
    for n in range(4):
        own_tariff(f"T{n}", last_updated=f"2024-01-0{n + 1}T00:00:00Z")
    client = ocpi(emsp)
    link = client.get(URL, params={"limit": 2}).headers["Link"]
    query = dict(parse_qsl(urlsplit(link[1 : link.index(">")]).query))
    assert query["offset"] == "2"

    assert ids(client.get(URL, params=query)) == ["T2", "T3"]
    assert ids(client.get(URL, params={**query, "offset": "1"})) == ["T1", "T2"]


def test_date_from_is_inclusive_and_date_to_exclusive(ocpi, ocpi_base_url, emsp):
    for day in (1, 2, 3, 4):
        own_tariff(f"D{day}", last_updated=f"2024-01-0{day}T00:00:00Z")
    client = ocpi(emsp)

    window = client.get(URL, params={"date_from": "2024-01-02T00:00:00Z", "date_to": "2024-01-04T00:00:00Z"})
    since = client.get(URL, params={"date_from": "2024-01-03T00:00:00Z"})
    until = client.get(URL, params={"date_to": "2024-01-02T00:00:00Z"})

    assert ids(window) == ["D2", "D3"]
    assert window.headers["X-Total-Count"] == "2"
    assert ids(since) == ["D3", "D4"]
    assert ids(until) == ["D1"]


def test_link_keeps_the_date_filters(ocpi, ocpi_base_url, emsp):
    for day in (1, 2, 3, 4):
        own_tariff(f"D{day}", last_updated=f"2024-01-0{day}T00:00:00Z")
    client = ocpi(emsp)

    first = client.get(URL, params={"date_from": "2024-01-02T00:00:00Z", "limit": 1})
    link = first.headers["Link"]
    second = client.get(link[1 : link.index(">")])

    assert "date_from=2024-01-02T00%3A00%3A00Z" in link
    assert (ids(first), ids(second)) == (["D2"], ["D3"])


def test_bad_pagination_parameters_are_2001(ocpi, ocpi_base_url, emsp):
    own_tariff("T1")
    for params in ({"limit": "-1"}, {"offset": "x"}, {"date_from": "yesterday"}):
        response = ocpi(emsp).get(URL, params=params)
        assert (response.status_code, response.json()["status_code"]) == (200, 2001), params


def test_routing_headers_select_one_of_our_cpo_parties(ocpi, ocpi_base_url, emsp):
    Party.objects.create(country_code="BE", party_id="TWO", role=Role.CPO, name="Second CPO")
    own_tariff("OWN1")
    data = tariff_data("TWO1", country_code="BE", party_id="TWO")
    tariff_put(partner=None, key=Key("BE", "TWO", "TWO1"), data=data)
    client = ocpi(emsp)

    both = client.get(URL)
    two = client.get(URL, headers={"OCPI-to-country-code": "BE", "OCPI-to-party-id": "TWO"})
    elsewhere = client.get(URL, headers={"OCPI-to-country-code": "FR", "OCPI-to-party-id": "NOT"})

    assert sorted(ids(both)) == ["OWN1", "TWO1"]
    assert ids(two) == ["TWO1"]
    assert (elsewhere.status_code, elsewhere.json()["status_code"]) == (404, 2000)


def test_without_token_401(ocpi, ocpi_base_url, emsp):
    own_tariff("T1")
    response = ocpi().get(URL)

    assert (response.status_code, response.json()["status_code"]) == (401, 2000)


def test_put_on_the_sender_is_405(ocpi, ocpi_base_url, emsp):
    response = ocpi(emsp).put(URL, json=tariff_data("T1"))

    assert (response.status_code, response.json()["status_code"]) == (405, 2000)


def test_version_details_publish_both_tariffs_interfaces(ocpi, ocpi_base_url, emsp):
    endpoints = ocpi(emsp).get("/ocpi/2.2.1").json()["data"]["endpoints"]

    tariffs = {(e["role"], e["url"]) for e in endpoints if e["identifier"] == "tariffs"}
    assert tariffs == {
        ("SENDER", f"{ocpi_base_url}/ocpi/2.2.1/cpo/tariffs"),
        ("RECEIVER", f"{ocpi_base_url}/ocpi/2.2.1/emsp/tariffs"),
    }
