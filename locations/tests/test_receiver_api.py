"""eMSP Receiver of Locations (REFERENCE §6.3, §2.5, §2.6) through real HTTP against the live server:
/ocpi/2.2.1/emsp/locations/{country_code}/{party_id}/{location_id}[/{evse_uid}[/{connector_id}]].

Every error path checks that nothing stored changed (rows, cached JSON, outbox); every write checks that the
cached JSON of the location equals a fresh render of its rows and what GET answers.
"""

import copy
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import orjson
import pytest

from conftest import make_partner
from locations.models import Connector, Evse, Location
from locations.services import location_render_rows
from locations.tests.factories import connector_data, evse_data, location_data
from ocpi_core.constants import Role, StatusCode
from ocpi_core.exceptions import InvalidParameters
from ocpi_core.models import Delivery, Partner, PartnerToken

CC, PID = "DE", "CPO"
BASE = "/ocpi/2.2.1/emsp/locations"
T_OLD, T0, T1, T2, T3, T4 = (
    "2023-01-01T00:00:00Z",
    "2024-01-01T00:00:00Z",
    "2024-02-01T00:00:00Z",
    "2024-03-01T00:00:00Z",
    "2024-04-01T00:00:00Z",
    "2024-05-01T00:00:00Z",
)
EVSE1, EVSE2 = "LOC1-1", "LOC1-2"
INVALID_HTTP = InvalidParameters.http_status  # the envelope carries 2001; the HTTP status is the core's choice


LOC, EVS, CON = ("LOC1",), ("LOC1", EVSE1), ("LOC1", EVSE1, "1")


def each(check: Callable[..., None], cases: Iterable[tuple[Any, ...]]) -> None:
    """Run `check(*case)` for every case against the same stored data (one live-server test instead of one per case
    keeps the suite fast) and report every failing case by its name (the case's first element)."""
    failures = []
    for case in cases:
        try:
            check(*case)
        except AssertionError as exc:
            failures.append(f"{case[0]}: {exc}")
    assert not failures, "\n".join(failures)


def url(*parts: str, cc: str = CC, pid: str = PID) -> str:
    return "/".join([BASE, cc, pid, *parts])


def body(location_id: str = "LOC1", **fields: Any) -> dict[str, Any]:
    """A Location of the partner's party with two EVSEs, stamped T0 unless given."""
    fields.setdefault("last_updated", T0)
    fields.setdefault("evses", 2)
    return location_data(location_id, country_code=CC, party_id=PID, **fields)


def snapshot() -> dict[str, Any]:
    """Everything a Locations write can touch."""
    return {
        "locations": list(Location.objects.order_by("pk").values()),
        "evses": list(Evse.objects.order_by("pk").values()),
        "connectors": list(Connector.objects.order_by("pk").values()),
        "deliveries": list(Delivery.objects.order_by("pk").values_list("pk", flat=True)),
    }


def ok(response: httpx.Response, http_status: int = 200) -> dict[str, Any]:
    data = response.json()
    assert (response.status_code, data["status_code"]) == (http_status, StatusCode.SUCCESS), response.text
    return data


def error(response: httpx.Response, http_status: int, status_code: int, *names: str) -> str:
    """Assert an error envelope; every name must appear in its status_message. Returns the message."""
    data = response.json()
    assert (response.status_code, data["status_code"]) == (http_status, status_code), response.text
    assert "data" not in data or data["data"] is None
    message = data.get("status_message", "")
    for name in names:
        assert name in message, message
    return message


def get(client: httpx.Client, *parts: str) -> Any:
    return ok(client.get(url(*parts)))["data"]


def assert_consistent(client: httpx.Client, location_id: str = "LOC1") -> dict[str, Any]:
    """The cached JSON equals a fresh render of the rows, and GET serves exactly that."""
    location = Location.objects.get(ocpi_id=location_id)
    fresh = location_render_rows(location.pk)
    assert orjson.loads(location.doc) == fresh
    assert get(client, location_id) == fresh
    return fresh


@pytest.fixture
def cpo(ocpi: Callable[..., httpx.Client], own_parties: Any) -> httpx.Client:
    """A registered CPO partner owning DE*CPO, speaking to our eMSP receiver."""
    _, token = make_partner(name="cpo", roles=((CC, PID, Role.CPO),))
    return ocpi(token)


@pytest.fixture
def stored(cpo: httpx.Client) -> dict[str, Any]:
    """LOC1 with EVSEs LOC1-1 and LOC1-2 (one connector "1" each), everything stamped T0."""
    data = body()
    ok(cpo.put(url("LOC1"), json=data), 201)
    return data


# --- PUT creates and replaces ---


def test_put_creates_201_then_replaces_200_at_each_depth(cpo: httpx.Client) -> None:
    location = body()
    ok(cpo.put(url("LOC1"), json=location), 201)
    assert get(cpo, "LOC1") == location
    ok(cpo.put(url("LOC1"), json={**location, "name": "Renamed", "last_updated": T1}), 200)
    assert get(cpo, "LOC1")["name"] == "Renamed"

    evse = evse_data("NEW", connectors=2, last_updated=T2)
    ok(cpo.put(url("LOC1", "NEW"), json=evse), 201)
    assert get(cpo, "LOC1", "NEW") == evse
    assert [e["uid"] for e in assert_consistent(cpo)["evses"]] == [EVSE1, EVSE2, "NEW"]  # a new EVSE comes last
    ok(cpo.put(url("LOC1", "NEW"), json={**evse, "status": "BLOCKED"}), 200)
    assert get(cpo, "LOC1", "NEW")["status"] == "BLOCKED"

    connector = connector_data("9", last_updated=T2, max_electric_power=11000)
    ok(cpo.put(url("LOC1", "NEW", "9"), json=connector), 201)
    assert get(cpo, "LOC1", "NEW", "9") == connector
    ok(cpo.put(url("LOC1", "NEW", "9"), json={**connector, "max_amperage": 32}), 200)
    assert get(cpo, "LOC1", "NEW", "9")["max_amperage"] == 32
    assert [c["id"] for c in get(cpo, "LOC1", "NEW")["connectors"]] == ["1", "2", "9"]
    assert_consistent(cpo)
    assert Delivery.objects.count() == 0  # a partner's location is never pushed anywhere


def test_put_location_clears_what_it_leaves_out_and_removes_left_out_evses(cpo: httpx.Client) -> None:
    full = body(
        state="Noord-Holland",
        parking_type="ON_STREET",
        related_locations=[
            {"latitude": "52.378901", "longitude": "4.900301", "name": {"language": "en", "text": "Gate"}}
        ],
        directions=[{"language": "en", "text": "Behind the station"}],
        operator={"name": "Operator"},
        suboperator={"name": "Suboperator"},
        owner={"name": "Owner", "website": "https://owner.example.com"},
        facilities=["CAFE", "TRAIN_STATION"],
        opening_times={"twentyfourseven": True},
        charging_when_closed=False,
        images=[{"url": "https://img.example.com/a.png", "category": "LOCATION", "type": "png", "width": 800}],
        energy_mix={"is_green_energy": True, "energy_sources": [{"source": "WIND", "percentage": 100}]},
    )
    full["evses"][1].update(floor_level="-1", physical_reference="P2", capabilities=["RESERVABLE"])
    ok(cpo.put(url("LOC1"), json=full), 201)
    assert get(cpo, "LOC1") == full

    minimal = body(last_updated=T1)
    del minimal["name"], minimal["postal_code"], minimal["evses"][0]  # only LOC1-2 now
    ok(cpo.put(url("LOC1"), json=minimal), 200)

    got = assert_consistent(cpo)
    assert set(got) == set(minimal)  # every optional field the PUT left out is gone
    assert got["evses"][0] == minimal["evses"][0]  # LOC1-2 replaced: its optional fields are gone too
    # the EVSE left out is never deleted: REMOVED, stamped with the location, listed after the ones sent
    assert got["evses"][1] == {**full["evses"][0], "status": "REMOVED", "last_updated": T1}
    assert Evse.objects.filter(location__ocpi_id="LOC1").count() == 2


def test_put_evse_replaces_it_and_drops_connectors_left_out(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    full = evse_data(EVSE1, connectors=3, last_updated=T1, floor_level="2", physical_reference="A1")
    full.update(
        capabilities=["RFID_READER"], parking_restrictions=["EV_ONLY"], directions=[{"language": "nl", "text": "Links"}]
    )
    ok(cpo.put(url("LOC1", EVSE1), json=full), 200)
    assert get(cpo, "LOC1", EVSE1) == full

    minimal = evse_data(EVSE1, last_updated=T2, connectors=0)
    del minimal["evse_id"]
    minimal["connectors"] = [connector_data("2", last_updated=T2)]
    ok(cpo.put(url("LOC1", EVSE1), json=minimal), 200)

    assert get(cpo, "LOC1", EVSE1) == minimal
    assert list(Connector.objects.filter(evse__uid=EVSE1).values_list("ocpi_id", flat=True)) == ["2"]
    assert get(cpo, "LOC1", EVSE2) == stored["evses"][1]  # its sibling is untouched
    assert_consistent(cpo)


def test_put_connector_replaces_it(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    full = connector_data(
        "1",
        last_updated=T1,
        tariff_ids=["T1", "T2"],
        max_electric_power=11000,
        terms_and_conditions="https://t.example.com",
    )
    ok(cpo.put(url("LOC1", EVSE1, "1"), json=full), 200)
    assert get(cpo, "LOC1", EVSE1, "1") == full
    minimal = connector_data("1", last_updated=T2, standard="CHADEMO", format="CABLE", power_type="DC")
    ok(cpo.put(url("LOC1", EVSE1, "1"), json=minimal), 200)
    assert get(cpo, "LOC1", EVSE1, "1") == minimal
    assert Connector.objects.filter(evse__uid=EVSE1).count() == 1
    assert_consistent(cpo)


# --- PATCH merges ---


def test_patch_merges_at_each_depth(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    ok(cpo.patch(url("LOC1"), json={"name": "Gent Zuid", "facilities": ["MALL"], "last_updated": T1}))
    expected = {**stored, "name": "Gent Zuid", "facilities": ["MALL"], "last_updated": T1}
    assert assert_consistent(cpo) == expected  # only the fields sent changed

    ok(cpo.patch(url("LOC1", EVSE1), json={"status": "CHARGING", "last_updated": T2}))
    evse = get(cpo, "LOC1", EVSE1)
    assert evse == {**stored["evses"][0], "status": "CHARGING", "last_updated": T2}

    ok(cpo.patch(url("LOC1", EVSE1, "1"), json={"tariff_ids": ["15"], "last_updated": T3}))
    assert get(cpo, "LOC1", EVSE1, "1") == {
        **stored["evses"][0]["connectors"][0],
        "tariff_ids": ["15"],
        "last_updated": T3,
    }

    # a list in a PATCH: the children it names are replaced or added, the others stay (PATCH removes nothing)
    ok(cpo.patch(url("LOC1", EVSE2), json={"connectors": [connector_data("2", last_updated=T4)], "last_updated": T4}))
    assert [c["id"] for c in get(cpo, "LOC1", EVSE2)["connectors"]] == ["1", "2"]
    ok(cpo.patch(url("LOC1"), json={"evses": [evse_data("LOC1-3", last_updated=T4)], "last_updated": T4}))
    assert [e["uid"] for e in get(cpo, "LOC1")["evses"]] == [EVSE1, EVSE2, "LOC1-3"]
    assert_consistent(cpo)


def test_patch_without_last_updated_is_2001_and_changes_nothing(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    def check(name: str, parts: tuple[str, ...], change: dict[str, Any]) -> None:
        for data in (change, {}):
            error(cpo.patch(url(*parts), json=data), INVALID_HTTP, StatusCode.INVALID_PARAMETERS, "last_updated")
        assert snapshot() == before

    before = snapshot()
    each(
        check,
        [
            ("location", LOC, {"name": "X"}),
            ("evse", EVS, {"status": "CHARGING"}),
            ("connector", CON, {"max_amperage": 32}),
            ("null", LOC, {"name": "X", "last_updated": None}),
        ],
    )


def test_patch_and_get_of_an_unknown_object_are_404_and_create_nothing(
    cpo: httpx.Client, stored: dict[str, Any]
) -> None:
    def check(name: str, parts: tuple[str, ...], status_code: int) -> None:
        error(cpo.patch(url(*parts), json={"status": "CHARGING", "last_updated": T1}), 404, status_code)
        error(cpo.get(url(*parts)), 404, status_code)
        assert snapshot() == before

    before = snapshot()
    each(
        check,
        [
            ("location", ("NOPE",), StatusCode.UNKNOWN_LOCATION),
            ("evse-of-unknown-location", ("NOPE", EVSE1), StatusCode.UNKNOWN_LOCATION),
            ("evse", ("LOC1", "NOPE"), StatusCode.CLIENT_ERROR),
            ("connector-of-unknown-evse", ("LOC1", "NOPE", "1"), StatusCode.CLIENT_ERROR),
            ("connector", ("LOC1", EVSE1, "9"), StatusCode.CLIENT_ERROR),
        ],
    )


def test_put_of_a_child_under_an_unknown_parent_is_404(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    before = snapshot()
    error(cpo.put(url("NOPE", "E9"), json=evse_data("E9", last_updated=T1)), 404, StatusCode.UNKNOWN_LOCATION)
    error(cpo.put(url("NOPE", EVSE1, "1"), json=connector_data("1", last_updated=T1)), 404, StatusCode.UNKNOWN_LOCATION)
    error(cpo.put(url("LOC1", "E9", "1"), json=connector_data("1", last_updated=T1)), 404, StatusCode.CLIENT_ERROR)
    assert snapshot() == before


# --- identifiers ---


def test_url_and_body_ids_must_match(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    def check(name: str, method: str, parts: tuple[str, ...], field: str, value: str) -> None:
        full = {1: body(last_updated=T1), 2: evse_data(EVSE1, last_updated=T1), 3: connector_data("1", last_updated=T1)}
        data = full[len(parts)] if method == "PUT" else {"last_updated": T1}
        data[field] = value
        error(cpo.request(method, url(*parts), json=data), INVALID_HTTP, StatusCode.INVALID_PARAMETERS, field)
        assert snapshot() == before

    before = snapshot()
    each(
        check,
        [
            (f"{method}-{name}", method, parts, field, value)
            for method in ("PUT", "PATCH")
            for name, parts, field, value in [
                ("country_code", LOC, "country_code", "NL"),
                ("party_id", LOC, "party_id", "OTH"),
                ("location-id", LOC, "id", "LOC2"),
                ("evse-uid", EVS, "uid", EVSE2),
                ("connector-id", CON, "id", "2"),
            ]
        ],
    )


def test_ids_are_compared_and_looked_up_case_insensitively_and_stay_as_stored(cpo: httpx.Client) -> None:
    data = body("Loc-A")
    data["evses"][0]["uid"] = "Evse-A"
    ok(cpo.put(url("loc-a", cc="de", pid="cpo"), json=data), 201)  # URL and body differ only in case

    ok(cpo.put(url("LOC-A"), json={**body("loc-a", last_updated=T1), "evses": data["evses"]}), 200)
    ok(cpo.patch(url("LOC-A", "EVSE-A"), json={"uid": "evse-a", "status": "BLOCKED", "last_updated": T2}), 200)
    ok(cpo.put(url("loc-a", "evse-a", "1"), json=connector_data("1", last_updated=T2, max_amperage=32)), 200)
    ok(cpo.patch(url("LOC-A"), json={"id": "LOC-A", "country_code": "de", "name": "Case", "last_updated": T3}))

    got = get(cpo, "LOC-A")
    assert (got["country_code"], got["party_id"], got["id"], got["evses"][0]["uid"]) == (CC, PID, "Loc-A", "Evse-A")
    assert got["evses"][0]["status"] == "BLOCKED"
    assert got["evses"][0]["connectors"][0]["max_amperage"] == 32
    assert get(cpo, "LOC-A", "EVSE-A")["uid"] == "Evse-A"
    assert Location.objects.get().ocpi_id == "Loc-A"  # one row: the PUT in other case replaced, never duplicated
    assert list(Evse.objects.values_list("uid", flat=True)).count("Evse-A") == 1
    assert_consistent(cpo, "Loc-A")


# --- ownership and authentication ---


def test_a_partner_writes_only_under_its_own_parties(
    ocpi: Callable[..., httpx.Client], cpo: httpx.Client, stored: dict[str, Any]
) -> None:
    _, other_token = make_partner(name="other", roles=(("FR", "OTH", Role.CPO),))
    other = ocpi(other_token)
    before = snapshot()

    foreign = location_data("LOC9", country_code="NL", party_id="XXX")
    error(cpo.put(url("LOC9", cc="NL", pid="XXX"), json=foreign), 404, StatusCode.CLIENT_ERROR)
    # the other partner may not touch DE*CPO's location: not by PUT, PATCH or GET
    error(other.put(url("LOC1"), json=body(last_updated=T1)), 404, StatusCode.CLIENT_ERROR)
    error(
        other.patch(url("LOC1", EVSE1), json={"status": "CHARGING", "last_updated": T1}), 404, StatusCode.CLIENT_ERROR
    )
    error(other.put(url("LOC1", EVSE1, "1"), json=connector_data("1", last_updated=T1)), 404, StatusCode.CLIENT_ERROR)
    error(other.get(url("LOC1")), 404, StatusCode.CLIENT_ERROR)
    # nor write its own data into our own CPO party's namespace
    error(other.put(url("LOC1", cc="NL", pid="OWN"), json=location_data("LOC1")), 404, StatusCode.CLIENT_ERROR)
    assert snapshot() == before


def test_token_a_and_missing_token_are_401(ocpi: Callable[..., httpx.Client], stored: dict[str, Any]) -> None:
    _, token_a = make_partner(name="invited", status=Partner.Status.INVITED, kind=PartnerToken.Kind.REGISTRATION)
    before = snapshot()
    for client in (ocpi(token_a), ocpi()):
        assert client.get(url("LOC1")).status_code == 401
        assert client.put(url("LOC1"), json=body(last_updated=T1)).status_code == 401
        response = client.patch(url("LOC1"), json={"name": "X", "last_updated": T1})
        assert response.status_code == 401
        assert response.json()["status_code"] == StatusCode.CLIENT_ERROR
    assert snapshot() == before


def test_get_returns_what_was_stored_with_routing_headers_swapped(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    headers = {
        "OCPI-from-country-code": CC,
        "OCPI-from-party-id": PID,
        "OCPI-to-country-code": "NL",
        "OCPI-to-party-id": "OWE",
    }
    for parts, expected in [
        (("LOC1",), stored),
        (("LOC1", EVSE2), stored["evses"][1]),
        (("LOC1", EVSE2, "1"), stored["evses"][1]["connectors"][0]),
    ]:
        response = cpo.get(url(*parts), headers=headers)
        assert ok(response)["data"] == expected
        assert (response.headers["OCPI-to-country-code"], response.headers["OCPI-to-party-id"]) == (CC, PID)
        assert (response.headers["OCPI-from-country-code"], response.headers["OCPI-from-party-id"]) == ("NL", "OWE")
    response = cpo.patch(url("LOC1", EVSE1), json={"status": "CHARGING", "last_updated": T1}, headers=headers)
    ok(response)
    assert response.headers["OCPI-to-party-id"] == PID


# --- last_updated ---


def test_child_writes_bump_the_parents_last_updated(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    steps: list[tuple[str, tuple[str, ...], dict[str, Any], str]] = [
        ("PUT", ("LOC1", EVSE1, "1"), connector_data("1", last_updated=T1), T1),
        ("PATCH", ("LOC1", EVSE1, "1"), {"max_amperage": 32, "last_updated": T2}, T2),
        ("PUT", ("LOC1", EVSE2), evse_data(EVSE2, last_updated=T3), T3),
        ("PATCH", ("LOC1", EVSE2), {"status": "OUTOFORDER", "last_updated": T4}, T4),
    ]
    for method, parts, data, stamp in steps:
        ok(cpo.request(method, url(*parts), json=data))
        assert get(cpo, *parts[:2])["last_updated"] == stamp  # the EVSE (for a connector) or the EVSE itself
        assert assert_consistent(cpo)["last_updated"] == stamp  # GET, the cached JSON and the rows agree


def test_parents_never_move_backwards(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    ok(cpo.patch(url("LOC1", EVSE1), json={"status": "CHARGING", "last_updated": T2}))
    ok(cpo.patch(url("LOC1", EVSE1, "1"), json={"max_amperage": 20, "last_updated": T1}))  # newer than the connector
    assert get(cpo, "LOC1", EVSE1, "1")["max_amperage"] == 20
    assert get(cpo, "LOC1", EVSE1)["last_updated"] == T2
    assert assert_consistent(cpo)["last_updated"] == T2


def test_children_listed_in_a_patch_never_overwrite_newer_ones(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    ok(cpo.patch(url("LOC1", EVSE1), json={"status": "CHARGING", "last_updated": T2}))
    ok(cpo.put(url("LOC1", EVSE2, "1"), json=connector_data("1", max_amperage=20, last_updated=T2)))

    older_evse = evse_data(EVSE1, status="BLOCKED", last_updated=T1)
    ok(cpo.patch(url("LOC1"), json={"name": "Renamed", "evses": [older_evse], "last_updated": T3}))
    older_connector = connector_data("1", max_amperage=10, last_updated=T1)
    ok(cpo.patch(url("LOC1", EVSE2), json={"connectors": [older_connector], "status": "BLOCKED", "last_updated": T3}))

    got = assert_consistent(cpo)
    assert (got["name"], got["last_updated"]) == ("Renamed", T3)  # the PATCH itself applies
    assert (got["evses"][0]["status"], got["evses"][0]["last_updated"]) == ("CHARGING", T2)
    assert got["evses"][1]["status"] == "BLOCKED"
    assert got["evses"][1]["connectors"][0]["max_amperage"] == 20


def test_an_older_last_updated_is_acknowledged_but_not_applied(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    def check(name: str, method: str, parts: tuple[str, ...], data: dict[str, Any]) -> None:
        ok(cpo.request(method, url(*parts), json=data))
        assert snapshot() == before

    before = snapshot()
    each(
        check,
        [
            ("put-location", "PUT", LOC, body(name="Old", last_updated=T_OLD)),
            ("patch-location", "PATCH", LOC, {"name": "Old", "last_updated": T_OLD}),
            ("put-evse", "PUT", EVS, evse_data(EVSE1, status="BLOCKED", last_updated=T_OLD)),
            ("patch-evse", "PATCH", EVS, {"status": "BLOCKED", "last_updated": T_OLD}),
            ("put-connector", "PUT", CON, connector_data("1", max_amperage=63, last_updated=T_OLD)),
            ("patch-connector", "PATCH", CON, {"max_amperage": 63, "last_updated": T_OLD}),
        ],
    )
    assert get(cpo, "LOC1") == stored


# --- validation ---


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting a dotted path (`evses.0.status`) of a body; `...` deletes it."""

    def mutate(data: dict[str, Any]) -> None:
        *head, last = path.split(".")
        target: Any = data
        for part in head:
            target = target[int(part)] if part.isdigit() else target[part]
        index: Any = int(last) if last.isdigit() else last
        if value is ...:
            del target[index]
        else:
            target[index] = copy.deepcopy(value)

    return mutate


INVALID = [
    ("enum", LOC, _set("parking_type", "GARAGE"), "parking_type"),
    ("too-long", LOC, _set("city", "x" * 46), "city"),
    ("coordinates-pattern", LOC, _set("coordinates.latitude", "52.37"), "coordinates.latitude"),
    ("coordinates-number", LOC, _set("coordinates.longitude", 4.9003), "coordinates.longitude"),
    ("latitude-range", LOC, _set("coordinates.latitude", "90.000001"), "coordinates.latitude"),
    ("longitude-range", LOC, _set("coordinates.longitude", "-180.500000"), "coordinates.longitude"),
    (
        "related-latitude-range",
        LOC,
        _set("related_locations", [{"latitude": "-91.000000", "longitude": "4.900301"}]),
        "related_locations[0].latitude",
    ),
    ("time-zone", LOC, _set("time_zone", "Mars/Olympus"), "time_zone"),
    ("allowed-to-published", LOC, _set("publish_allowed_to", [{"uid": "04A1", "type": "RFID"}]), "publish_allowed_to"),
    ("missing-required", LOC, _set("address", ...), "address"),
    ("null-required", LOC, _set("time_zone", None), "time_zone"),
    ("datetime-offset", LOC, _set("last_updated", "2024-01-01T01:00:00+01:00"), "last_updated"),
    ("evse-enum-nested", LOC, _set("evses.0.status", "BROKEN"), "evses[0].status"),
    ("duplicate-evse-uid", LOC, _set("evses.1.uid", EVSE1.lower()), "evses[1].uid"),
    (
        "hours-end-before-begin",
        LOC,
        _set(
            "opening_times",
            {
                "twentyfourseven": False,
                "regular_hours": [{"weekday": 1, "period_begin": "18:00", "period_end": "08:00"}],
            },
        ),
        "opening_times.regular_hours[0].period_end",
    ),
    (
        "hours-weekday",
        LOC,
        _set(
            "opening_times",
            {
                "twentyfourseven": False,
                "regular_hours": [{"weekday": 8, "period_begin": "08:00", "period_end": "18:00"}],
            },
        ),
        "opening_times.regular_hours[0].weekday",
    ),
    ("hours-missing", LOC, _set("opening_times", {"twentyfourseven": False}), "opening_times.regular_hours"),
    (
        "hours-with-247",
        LOC,
        _set(
            "opening_times",
            {
                "twentyfourseven": True,
                "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "18:00"}],
            },
        ),
        "opening_times.regular_hours",
    ),
    (
        "energy-percentage",
        LOC,
        _set("energy_mix", {"is_green_energy": False, "energy_sources": [{"source": "COAL", "percentage": 120}]}),
        "energy_mix.energy_sources[0].percentage",
    ),
    (
        "allowed-to-uid-without-type",
        LOC,
        lambda d: d.update(publish=False, publish_allowed_to=[{"uid": "04A1"}]),
        "publish_allowed_to[0].type",
    ),
    (
        "image-category",
        LOC,
        _set("images", [{"url": "https://i.example.com/a.png", "category": "LOGO", "type": "png"}]),
        "images[0].category",
    ),
    # Location.country is an "ISO 3166-1 alpha-3 code" (mod_locations, Location object): not alpha-2, upper case
    ("country-alpha-2", LOC, _set("country", "NL"), "country"),
    ("country-lower-case", LOC, _set("country", "nld"), "country"),
    ("evse-without-connectors", EVS, _set("connectors", []), "connectors"),
    ("evse-connectors-missing", EVS, _set("connectors", ...), "connectors"),
    ("evse-id-too-long", EVS, _set("evse_id", "E" * 49), "evse_id"),
    ("capability-enum", EVS, _set("capabilities", ["FLYING"]), "capabilities[0]"),
    ("number-for-string", EVS, _set("physical_reference", 3), "physical_reference"),
    ("duplicate-connector-id", EVS, _set("connectors.1", connector_data("1")), "connectors[1].id"),
    ("connector-enum", CON, _set("standard", "PLUG"), "standard"),
    ("int-out-of-range", CON, _set("max_voltage", 2**40), "max_voltage"),
    ("string-for-int", CON, _set("max_amperage", "16"), "max_amperage"),
    ("tariff-id-too-long", CON, _set("tariff_ids", ["T" * 37]), "tariff_ids[0]"),
    ("url-too-long", CON, _set("terms_and_conditions", "u" * 256), "terms_and_conditions"),
]


def test_an_invalid_put_is_2001_naming_the_field_and_changes_nothing(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    def check(name: str, parts: tuple[str, ...], mutate: Callable[[dict[str, Any]], None], field: str) -> None:
        data = {
            1: body(last_updated=T1),
            2: evse_data(EVSE1, connectors=2, last_updated=T1),
            3: connector_data("1", last_updated=T1),
        }[len(parts)]
        mutate(data)
        error(cpo.put(url(*parts), json=data), INVALID_HTTP, StatusCode.INVALID_PARAMETERS, field)
        assert snapshot() == before

    before = snapshot()
    each(check, INVALID)


def test_coordinates_at_their_bounds_and_a_time_zone_in_any_case_are_taken(
    cpo: httpx.Client, stored: dict[str, Any]
) -> None:
    data = body(last_updated=T1, time_zone="europe/amsterdam")
    data["coordinates"] = {"latitude": "-90.000000", "longitude": "180.000000"}

    ok(cpo.put(url("LOC1"), json=data))

    got = ok(cpo.get(url("LOC1")))["data"]
    assert (got["coordinates"], got["time_zone"]) == (data["coordinates"], "europe/amsterdam")


def test_a_patch_that_would_break_the_object_is_2001_and_changes_nothing(
    cpo: httpx.Client, stored: dict[str, Any]
) -> None:
    def check(name: str, parts: tuple[str, ...], data: dict[str, Any], field: str) -> None:
        patch = {**data, "last_updated": T1}
        error(cpo.patch(url(*parts), json=patch), INVALID_HTTP, StatusCode.INVALID_PARAMETERS, field)
        assert snapshot() == before

    before = snapshot()
    each(
        check,
        [
            ("required-null", LOC, {"address": None}, "address"),
            ("publish-null", LOC, {"publish": None}, "publish"),
            ("partial-value-object", LOC, {"coordinates": {"latitude": "52.000000"}}, "coordinates.longitude"),
            (
                "allowed-to-published",
                LOC,
                {"publish": True, "publish_allowed_to": [{"group_id": "G1"}]},
                "publish_allowed_to",
            ),
            ("too-long", LOC, {"name": "n" * 256}, "name"),
            ("country-alpha-2", LOC, {"country": "BE"}, "country"),
            (
                "evse-in-list-incomplete",
                LOC,
                {"evses": [{"uid": "X", "status": "AVAILABLE", "last_updated": T1}]},
                "evses[0].connectors",
            ),
            ("no-connectors", EVS, {"connectors": []}, "connectors"),
            ("connectors-null", EVS, {"connectors": None}, "connectors"),
            ("enum", EVS, {"status": "GONE"}, "status"),
            (
                "duplicate-connector-id",
                EVS,
                {"connectors": [connector_data("5"), connector_data("5")]},
                "connectors[1].id",
            ),
            ("connector-required-null", CON, {"max_voltage": None}, "max_voltage"),
            ("connector-enum", CON, {"power_type": "AC"}, "power_type"),
        ],
    )


def test_a_patch_is_checked_against_the_stored_object(cpo: httpx.Client) -> None:
    private = body(publish=False, publish_allowed_to=[{"visual_number": "123", "issuer": "Issuer"}])
    ok(cpo.put(url("LOC1"), json=private), 201)
    before = snapshot()
    # publish=true with the stored publish_allowed_to would break "only allowed when publish is false"
    error(
        cpo.patch(url("LOC1"), json={"publish": True, "last_updated": T1}),
        INVALID_HTTP,
        StatusCode.INVALID_PARAMETERS,
        "publish_allowed_to",
    )
    assert snapshot() == before
    ok(cpo.patch(url("LOC1"), json={"publish": True, "publish_allowed_to": [], "last_updated": T1}))
    got = assert_consistent(cpo)
    assert got["publish"] is True
    assert "publish_allowed_to" not in got


def test_a_body_that_is_no_object_is_2001(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    def check(name: str, method: str, raw: bytes) -> None:
        response = cpo.request(method, url("LOC1"), content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == (400 if name == "broken-json" else INVALID_HTTP)  # broken JSON: HTTP 400
        assert response.json()["status_code"] == StatusCode.INVALID_PARAMETERS
        assert snapshot() == before

    before = snapshot()
    raws = [("list", b"[]"), ("string", b'"text"'), ("broken-json", b"{not json")]
    each(check, [(name, method, raw) for name, raw in raws for method in ("PUT", "PATCH")])


def test_an_evse_removed_by_patch_stays_stored(cpo: httpx.Client, stored: dict[str, Any]) -> None:
    ok(cpo.patch(url("LOC1", EVSE2), json={"status": "REMOVED", "last_updated": T1}))
    got = assert_consistent(cpo)
    assert [(e["uid"], e["status"]) for e in got["evses"]] == [(EVSE1, "AVAILABLE"), (EVSE2, "REMOVED")]
    assert got["last_updated"] == T1
    # nothing is deleted: DELETE (and POST) are no methods of this interface
    before = snapshot()
    for method in ("DELETE", "POST"):
        response = cpo.request(method, url("LOC1", EVSE2), json=evse_data(EVSE2, last_updated=T2))
        assert (response.status_code, response.json()["status_code"]) == (405, StatusCode.CLIENT_ERROR)
    assert snapshot() == before
    # a later PUT may bring it back
    ok(cpo.put(url("LOC1", EVSE2), json=evse_data(EVSE2, last_updated=T2)))
    assert get(cpo, "LOC1", EVSE2)["status"] == "AVAILABLE"
