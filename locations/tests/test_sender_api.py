"""CPO Sender of Locations (REFERENCE §6.2, §2.7, §2.10) through real HTTP against the live server:
GET /ocpi/2.2.1/cpo/locations and /ocpi/2.2.1/cpo/locations/{location_id}[/{evse_uid}[/{connector_id}]].
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from conftest import make_partner
from locations.models import Location
from locations.services import Key, evse_status_set, location_put, location_render_rows
from locations.tests.factories import location_data, own_location
from ocpi_core.constants import Role, StatusCode
from ocpi_core.models import Partner, PartnerToken, Party

LIST = "/ocpi/2.2.1/cpo/locations"


def to_headers(country_code: str, party_id: str) -> dict[str, str]:
    return {
        "OCPI-from-country-code": "DE",
        "OCPI-from-party-id": "PRT",
        "OCPI-to-country-code": country_code,
        "OCPI-to-party-id": party_id,
    }


def page(client: httpx.Client, url: str = LIST, **params: Any) -> tuple[Any, httpx.Headers]:
    response = client.get(url, params=params or None)
    data = response.json()
    assert (response.status_code, data["status_code"]) == (200, StatusCode.SUCCESS), response.text
    return data["data"], response.headers


def ids(objects: list[dict[str, Any]]) -> list[str]:
    return [o["id"] for o in objects]


def walk(client: httpx.Client, **params: Any) -> list[str]:
    """Follow Link headers from the first page to the last; the ids in the order served."""
    objects, headers = page(client, **params)
    seen = ids(objects)
    while "Link" in headers:
        link = headers["Link"]
        assert link.endswith('>; rel="next"'), link
        objects, headers = page(client, link[1 : link.index(">")])
        seen += ids(objects)
    return seen


def stamp(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=UTC)


@pytest.fixture
def emsp(ocpi: Callable[..., httpx.Client], registered_partner: tuple[Partner, str]) -> httpx.Client:
    """A registered eMSP partner reading our CPO Sender."""
    return ocpi(registered_partner[1])


# --- what is listed ---


def test_only_our_own_publishable_locations_are_served(
    emsp: httpx.Client, own_parties: list[Party], ocpi_base_url: str
) -> None:
    public = own_location("PUBLIC", last_updated=stamp(1))
    own_location("HIDDEN", publish=False, last_updated=stamp(2))  # publish=false, no publish_allowed_to
    listed = own_location(
        "LISTED", publish=False, publish_allowed_to=[{"uid": "04A1B2", "type": "RFID"}], last_updated=stamp(3)
    )
    own_location("EMSPSIDE", party_id="OWE", last_updated=stamp(4))  # a party of ours, but not a CPO
    partner, _ = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    received = location_data("THEIRS", country_code="DE", party_id="CPO")
    location_put(partner=partner, key=Key("DE", "CPO", "THEIRS"), data=received)

    objects, headers = page(emsp)

    assert ids(objects) == ["PUBLIC", "LISTED"]
    assert headers["X-Total-Count"] == "2"
    assert objects == [orjson.loads(public.doc), orjson.loads(listed.doc)]  # the cached JSON, as stored
    assert objects[0] == location_render_rows(public.pk)
    for hidden in ("HIDDEN", "EMSPSIDE", "THEIRS"):
        response = emsp.get(f"{LIST}/{hidden}")
        assert (response.status_code, response.json()["status_code"]) == (404, StatusCode.UNKNOWN_LOCATION)
    assert page(emsp, f"{LIST}/LISTED")[0]["publish_allowed_to"] == [{"uid": "04A1B2", "type": "RFID"}]


def test_offset_limit_and_headers(emsp: httpx.Client, own_parties: list[Party], settings: Any) -> None:
    settings.OCPI_MAX_PAGE_LIMIT = 3
    for day in range(1, 6):
        own_location(f"L{day}", last_updated=stamp(day))

    objects, headers = page(emsp, limit=2)
    assert ids(objects) == ["L1", "L2"]
    assert (headers["X-Total-Count"], headers["X-Limit"]) == ("5", "3")
    assert 'rel="next"' in headers["Link"]

    objects, headers = page(emsp, offset=3, limit=2)
    assert ids(objects) == ["L4", "L5"]
    assert "Link" not in headers  # the last page

    objects, headers = page(emsp, limit=50)  # capped at X-Limit
    assert ids(objects) == ["L1", "L2", "L3"]
    assert (headers["X-Total-Count"], headers["X-Limit"]) == ("5", "3")
    assert "offset=3" in headers["Link"]

    objects, headers = page(emsp, offset=9)
    assert (objects, headers["X-Total-Count"]) == ([], "5")
    assert "Link" not in headers

    for bad in ({"offset": "-1"}, {"limit": "x"}, {"date_from": "yesterday"}, {"date_to": "2024-01-01T00:00:00+01:00"}):
        response = emsp.get(LIST, params=bad)
        assert response.json()["status_code"] == StatusCode.INVALID_PARAMETERS, bad


def test_following_links_serves_each_location_once(
    emsp: httpx.Client, own_parties: list[Party], ocpi_base_url: str
) -> None:
    same = stamp(1)  # one timestamp for all: the order (and the cursor in the Link) must break ties by row
    for n in range(7):
        own_location(f"L{n}", last_updated=same)
    assert walk(emsp, limit=2) == [f"L{n}" for n in range(7)]
    assert walk(emsp, limit=3, offset=2) == [f"L{n}" for n in range(2, 7)]


def test_a_location_added_while_paging_is_served_once_at_the_end(
    emsp: httpx.Client, own_parties: list[Party], ocpi_base_url: str
) -> None:
    for day in range(1, 5):
        own_location(f"L{day}", last_updated=stamp(day))
    objects, headers = page(emsp, limit=2)
    own_location("NEW", last_updated=stamp(9))
    seen = ids(objects)
    while "Link" in headers:
        objects, headers = page(emsp, headers["Link"][1 : headers["Link"].index(">")])
        seen += ids(objects)
    assert seen == ["L1", "L2", "L3", "L4", "NEW"]
    assert headers["X-Total-Count"] == "5"


def test_a_link_with_its_offset_lowered_is_served_from_that_offset(
    emsp: httpx.Client, own_parties: list[Party], ocpi_base_url: str
) -> None:
    """transport_and_format, Paginated Response: when X-Total-Count shrinks, "redo the previous GET with the offset
    lowered by 1". The Link's cursor must not override the offset the client asks for."""
    for day in range(1, 6):
        own_location(f"L{day}", last_updated=stamp(day))
    link = page(emsp, limit=2)[1]["Link"]
    query = parse_qs(urlsplit(link[1 : link.index(">")]).query)
    assert query["offset"] == ["2"]

    as_linked = {name: values[0] for name, values in query.items()}
    assert ids(page(emsp, **as_linked)[0]) == ["L3", "L4"]
    assert ids(page(emsp, **{**as_linked, "offset": "1"})[0]) == ["L2", "L3"]
    assert ids(page(emsp, **{**as_linked, "offset": "4"})[0]) == ["L5"]


def test_date_filters_apply_to_location_last_updated(
    emsp: httpx.Client, own_parties: list[Party], ocpi_base_url: str
) -> None:
    for day in (1, 2, 3, 4):
        own_location(f"D{day}", last_updated=stamp(day))

    assert ids(page(emsp, date_from="2024-01-02T00:00:00Z")[0]) == ["D2", "D3", "D4"]  # inclusive
    assert ids(page(emsp, date_to="2024-01-03T00:00:00Z")[0]) == ["D1", "D2"]  # exclusive
    objects, headers = page(emsp, date_from="2024-01-02T00:00:00Z", date_to="2024-01-04T00:00:00Z", limit=1)
    assert (ids(objects), headers["X-Total-Count"]) == (["D2"], "2")
    assert "date_from=2024-01-02T00%3A00%3A00Z" in headers["Link"]  # the Link keeps the filters
    assert "date_to=2024-01-04T00%3A00%3A00Z" in headers["Link"]
    assert walk(emsp, date_from="2024-01-02T00:00:00Z", date_to="2024-01-04T00:00:00Z", limit=1) == ["D2", "D3"]


def test_an_evse_status_change_brings_the_location_into_a_date_from_window(
    emsp: httpx.Client, own_parties: list[Party]
) -> None:
    own_location("QUIET", last_updated=stamp(1))
    own_location("BUSY", evses=2, last_updated=stamp(1))
    window = {"date_from": "2024-01-10T00:00:00Z"}
    assert page(emsp, **window)[0] == []

    evse_status_set(key=Key("NL", "OWN", "BUSY", "BUSY-2"), status="CHARGING", at=stamp(15))

    objects, _ = page(emsp, **window)
    assert ids(objects) == ["BUSY"]
    assert objects[0]["last_updated"] == "2024-01-15T00:00:00Z"
    assert [(e["uid"], e["status"], e["last_updated"]) for e in objects[0]["evses"]] == [
        ("BUSY-1", "AVAILABLE", "2024-01-01T00:00:00Z"),
        ("BUSY-2", "CHARGING", "2024-01-15T00:00:00Z"),
    ]
    assert objects[0] == location_render_rows(Location.objects.get(ocpi_id="BUSY").pk)
    assert page(emsp, f"{LIST}/BUSY/BUSY-2")[0]["status"] == "CHARGING"


# --- one object ---


def test_get_location_evse_and_connector_by_id_case_insensitively(emsp: httpx.Client, own_parties: list[Party]) -> None:
    location = own_location("Loc-X", evses=2)
    doc = orjson.loads(location.doc)

    assert page(emsp, f"{LIST}/loc-x")[0] == doc
    assert page(emsp, f"{LIST}/LOC-X/loc-x-2")[0] == doc["evses"][1]
    assert page(emsp, f"{LIST}/Loc-X/LOC-X-2/1")[0] == doc["evses"][1]["connectors"][0]


def test_unknown_objects_are_404(emsp: httpx.Client, own_parties: list[Party]) -> None:
    own_location("Loc-X")
    for path, status_code in [
        ("NOPE", StatusCode.UNKNOWN_LOCATION),
        ("NOPE/Loc-X-1", StatusCode.UNKNOWN_LOCATION),
        ("Loc-X/NOPE", StatusCode.CLIENT_ERROR),
        ("Loc-X/NOPE/1", StatusCode.CLIENT_ERROR),
        ("Loc-X/Loc-X-1/9", StatusCode.CLIENT_ERROR),
    ]:
        response = emsp.get(f"{LIST}/{path}")
        assert (response.status_code, response.json()["status_code"]) == (404, status_code), path
        assert "data" not in response.json()


# --- routing headers and authentication ---


def test_ocpi_to_headers_select_one_of_our_cpo_parties(emsp: httpx.Client, own_parties: list[Party]) -> None:
    Party.objects.create(country_code="NL", party_id="OW2", role=Role.CPO, name="Second CPO")
    own_location("A1", last_updated=stamp(1))
    own_location("B1", party_id="OW2", last_updated=stamp(2))
    own_location("A2", last_updated=stamp(3))

    assert ids(page(emsp)[0]) == ["A1", "B1", "A2"]  # no routing headers: every own CPO party
    response = emsp.get(LIST, headers=to_headers("NL", "OW2"))
    assert (ids(response.json()["data"]), response.headers["X-Total-Count"]) == (["B1"], "1")
    assert (response.headers["OCPI-from-country-code"], response.headers["OCPI-from-party-id"]) == ("NL", "OW2")
    assert (response.headers["OCPI-to-country-code"], response.headers["OCPI-to-party-id"]) == ("DE", "PRT")
    assert ids(emsp.get(LIST, headers=to_headers("nl", "own")).json()["data"]) == ["A1", "A2"]

    assert emsp.get(f"{LIST}/B1", headers=to_headers("NL", "OW2")).json()["data"]["party_id"] == "OW2"
    response = emsp.get(f"{LIST}/A1", headers=to_headers("NL", "OW2"))  # A1 is not OW2's
    assert (response.status_code, response.json()["status_code"]) == (404, StatusCode.UNKNOWN_LOCATION)
    for party in (("NL", "OWE"), ("FR", "XXX")):  # our eMSP party, and a party that is not ours
        response = emsp.get(LIST, headers=to_headers(*party))
        assert response.status_code == 404
        assert response.json()["status_code"] == StatusCode.CLIENT_ERROR


def test_token_a_and_missing_token_are_401_a_registered_partner_is_served(
    ocpi: Callable[..., httpx.Client], emsp: httpx.Client, own_parties: list[Party]
) -> None:
    own_location("L1")
    _, token_a = make_partner(name="invited", status=Partner.Status.INVITED, kind=PartnerToken.Kind.REGISTRATION)
    for client in (ocpi(token_a), ocpi(), ocpi("not-a-token")):
        for path in (LIST, f"{LIST}/L1", f"{LIST}/L1/L1-1", f"{LIST}/L1/L1-1/1"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.json()["status_code"] == StatusCode.CLIENT_ERROR
            assert "data" not in response.json()
    assert ids(page(emsp)[0]) == ["L1"]
