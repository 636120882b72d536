"""Platform API for our own locations (/api/locations/): JWT staff only; writes go through the locations services,
so every change lands in the rows, the cached OCPI JSON and the push outbox of partners receiving locations; a
refused request changes none of them."""

import copy
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from conftest import make_partner
from locations.api.platform import stamped
from locations.models import Connector, Evse, Location
from locations.services import Key, location_put
from ocpi_core.constants import Role
from ocpi_core.envelope import format_datetime, parse_datetime
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, Party
from ocpi_core.validation import validate

PASSWORD = "correct horse battery staple"
BASE = "/api/locations/"
LOC = f"{BASE}NL/OWN/LOC1"


def connector(connector_id: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "id": connector_id,
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 230,
        "max_amperage": 16,
        "tariff_ids": ["AC-1"],
        **extra,
    }


def evse(uid: str, status: str = "AVAILABLE", connectors: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "uid": uid,
        "evse_id": f"NL*OWN*E{uid}",
        "status": status,
        "connectors": [connector(str(n)) for n in range(1, connectors + 1)],
        **extra,
    }


def location(location_id: str = "LOC1", *, party_id: str = "OWN", city: str = "Utrecht", **extra: Any) -> dict:
    """A valid own Location without any last_updated (the platform API stamps it)."""
    return {
        "country_code": "NL",
        "party_id": party_id,
        "id": location_id,
        "publish": True,
        "name": "Station square",
        "address": "Stationsplein 1",
        "city": city,
        "country": "NLD",
        "coordinates": {"latitude": "52.089400", "longitude": "5.110200"},
        "evses": [evse("E1", connectors=2), evse("E2")],
        "time_zone": "Europe/Amsterdam",
        **extra,
    }


@pytest.fixture
def receiver(own_parties: list[Party]) -> Partner:
    """A registered eMSP partner offering the locations RECEIVER interface: our changes are pushed to it."""
    partner, _ = make_partner(name="receiver")
    PartnerEndpoint.objects.create(
        partner=partner, identifier="locations", role="RECEIVER", url="http://127.0.0.1:9/ocpi/2.2.1/locations"
    )
    return partner


@pytest.fixture
def bystander(own_parties: list[Party]) -> Partner:
    """A registered partner without a locations receiver: nothing is pushed to it."""
    partner, _ = make_partner(name="bystander", roles=(("FR", "BYS", Role.EMSP),))
    return partner


def send(client: Client, method: str, path: str, body: Any = None) -> Any:
    data = orjson.dumps(body) if body is not None else None
    return getattr(client, method)(path, data=data, content_type="application/json")


def created(client: Client, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = send(client, "post", BASE, body or location())
    assert response.status_code == 201, response.content
    return response.json()


def stored(location_id: str = "LOC1") -> tuple[Any, ...]:
    """Everything a write may change: the rows, the cached JSON and the outbox."""
    loc = Location.objects.filter(ocpi_id=location_id).first()
    return (
        loc and (loc.name, loc.last_updated, loc.doc),
        sorted(Evse.objects.filter(location=loc).values_list("uid", "status", "last_updated")),
        sorted(Connector.objects.filter(evse__location=loc).values_list("ocpi_id", "max_amperage", "last_updated")),
        sorted(Delivery.objects.values_list("pk", "status", "method", "object_path", "fields")),
    )


def pending(partner: Partner) -> list[tuple[str, str, list[str]]]:
    return [
        (d.method, d.object_path, sorted(d.fields))
        for d in Delivery.objects.filter(partner=partner, status=Delivery.Status.PENDING).order_by("pk")
    ]


def delivered_all() -> None:
    """The partner got what is queued so far (as after a run of the push worker)."""
    Delivery.objects.filter(status=Delivery.Status.PENDING).update(status=Delivery.Status.DELIVERED)


# --- authentication ---------------------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", BASE),
    ("post", BASE),
    ("get", LOC),
    ("put", LOC),
    ("patch", LOC),
    ("put", f"{LOC}/evses/E1"),
    ("patch", f"{LOC}/evses/E1"),
    ("put", f"{LOC}/evses/E1/connectors/1"),
    ("patch", f"{LOC}/evses/E1/connectors/1"),
    ("post", f"{LOC}/evses/E1/status"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_jwt(client: Client, own_parties: list[Party], method: str, path: str) -> None:
    response = send(client, method, path, location() if method != "get" else None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Location.objects.exists()


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_is_for_staff_only(client: Client, own_parties: list[Party], method: str, path: str) -> None:
    get_user_model().objects.create_user("visitor", password=PASSWORD)
    tokens = client.post("/api/token/", {"username": "visitor", "password": PASSWORD}, content_type="application/json")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {tokens.json()['access']}"
    response = send(client, method, path, location() if method != "get" else None)
    assert response.status_code == 403
    assert not Location.objects.exists()


# --- create ----------------------------------------------------------------------------------------------------


def test_create_stores_rows_and_cached_json_and_queues_a_push(
    staff: Client, receiver: Partner, bystander: Partner
) -> None:
    before = timezone.now()
    response = send(staff, "post", BASE, location())

    assert response.status_code == 201, response.content
    assert response["Location"] == LOC
    body = response.json()
    validate("Location", body)
    # last_updated left out everywhere: stamped with the time of the request
    stamp = parse_datetime(body["last_updated"])
    assert before - timedelta(seconds=1) <= stamp <= timezone.now()
    assert {e["last_updated"] for e in body["evses"]} == {body["last_updated"]}
    row = Location.objects.get(ocpi_id="LOC1")
    assert (row.partner, row.country_code, row.party_id, row.city) == (None, "NL", "OWN", "Utrecht")
    assert orjson.loads(row.doc) == body
    assert list(Evse.objects.filter(location=row).values_list("uid", flat=True)) == ["E1", "E2"]
    assert Connector.objects.filter(evse__location=row).count() == 3
    assert pending(receiver) == [("PUT", "LOC1", [])]
    assert pending(bystander) == []
    assert staff.get(LOC).json() == body


def test_create_keeps_an_explicit_last_updated(staff: Client) -> None:
    body = created(staff, location(last_updated="2024-05-01T10:00:00Z"))
    assert body["last_updated"] == "2024-05-01T10:00:00Z"
    assert body["evses"][0]["last_updated"] != "2024-05-01T10:00:00Z"  # the EVSE's own was stamped


def test_create_of_an_existing_id_is_409_and_changes_nothing(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()

    response = send(staff, "post", BASE, location(name="Another name"))

    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert stored() == before


@pytest.mark.parametrize(
    ("change", "messages"),
    [
        ({"address": None}, ["address: is required"]),
        ({"coordinates": {"latitude": "52.1", "longitude": "5.110200"}}, ["coordinates.latitude: does not match"]),
        ({"evses": [evse("E1", status="BROKEN")]}, ["evses[0].status: must be one of the Status values"]),
        ({"evses": [{**evse("E1"), "connectors": []}]}, ["evses[0].connectors: must contain at least one element"]),
        ({"city": "x" * 46, "publish": "yes"}, ["city: must be at most 45", "publish: must be true or false"]),
    ],
)
def test_invalid_body_is_400_naming_the_field_and_stores_nothing(
    staff: Client, receiver: Partner, change: dict[str, Any], messages: list[str]
) -> None:
    body = {key: value for key, value in {**location(), **change}.items() if value is not None}

    response = send(staff, "post", BASE, body)

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert all(message in detail for message in messages), detail
    assert response.json()["ocpi_status_code"] == 2001
    assert not Location.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("party_id", ["PRT", "OWE", "ZZZ"])  # a partner's party, our own eMSP party, nobody's
def test_create_under_a_party_that_is_not_our_own_cpo_is_400(staff: Client, receiver: Partner, party_id: str) -> None:
    response = send(staff, "post", BASE, location(party_id=party_id))

    assert response.status_code == 400
    assert f"NL*{party_id} is not one of our own CPO parties" in response.json()["detail"]
    assert not Location.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("body", [[], "text", 12])
def test_create_with_a_body_that_is_not_an_object_is_400(staff: Client, body: Any) -> None:
    response = send(staff, "post", BASE, body)
    assert response.status_code == 400
    assert "body: must be a JSON object" in response.json()["detail"]
    assert not Location.objects.exists()


def test_malformed_json_is_400(staff: Client) -> None:
    response = staff.post(BASE, data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert not Location.objects.exists()


# --- replace (PUT) ---------------------------------------------------------------------------------------------


def test_put_creates_then_replaces_and_never_deletes_an_evse(staff: Client, receiver: Partner) -> None:
    first = send(staff, "put", LOC, location())
    assert first.status_code == 201
    delivered_all()

    replacement = location(name="Station square (north)", evses=[evse("E1", status="CHARGING")])
    response = send(staff, "put", LOC, replacement)

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Station square (north)"
    # E2 left out of the PUT: REMOVED, never deleted; E1 keeps one connector
    assert [(e["uid"], e["status"]) for e in body["evses"]] == [("E1", "CHARGING"), ("E2", "REMOVED")]
    assert [c["id"] for c in body["evses"][0]["connectors"]] == ["1"]
    assert orjson.loads(Location.objects.get(ocpi_id="LOC1").doc) == body
    assert pending(receiver) == [("PUT", "LOC1", [])]


def test_put_keys_a_new_location_as_its_body_spells_the_id(staff: Client, receiver: Partner) -> None:
    response = send(staff, "put", f"{BASE}nl/own/loc9", location("LOC9"))
    assert response.status_code == 201
    assert Location.objects.get().ocpi_id == "LOC9"
    assert Delivery.objects.get().object_path == "LOC9"
    assert (Delivery.objects.get().country_code, Delivery.objects.get().party_id) == ("NL", "OWN")


def test_put_with_a_body_id_other_than_the_url_is_400_and_changes_nothing(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()

    response = send(staff, "put", LOC, location("LOC2"))

    assert response.status_code == 400
    assert response.json()["detail"].startswith("id:")
    assert stored() == before
    assert not Location.objects.filter(ocpi_id="LOC2").exists()


def test_put_older_than_stored_is_409_and_changes_nothing(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()

    response = send(staff, "put", LOC, location(name="Stale", last_updated="2020-01-01T00:00:00Z"))

    assert response.status_code == 409
    assert "older" in response.json()["detail"]
    assert stored() == before


def test_put_under_a_foreign_party_is_400(staff: Client, receiver: Partner) -> None:
    response = send(staff, "put", f"{BASE}DE/PRT/LOC1", {**location(), "country_code": "DE", "party_id": "PRT"})
    assert response.status_code == 400
    assert "DE*PRT is not one of our own CPO parties" in response.json()["detail"]
    assert not Location.objects.exists()
    assert not Delivery.objects.exists()


# --- partial change (PATCH) ------------------------------------------------------------------------------------


def test_patch_without_last_updated_changes_the_fields_and_stamps_now(staff: Client, receiver: Partner) -> None:
    old = created(staff, location(last_updated="2024-05-01T10:00:00Z"))
    delivered_all()

    response = send(staff, "patch", LOC, {"name": "Renamed", "facilities": ["CAFE"]})

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["facilities"], body["address"]) == ("Renamed", ["CAFE"], old["address"])
    assert parse_datetime(body["last_updated"]) > parse_datetime(old["last_updated"])
    assert orjson.loads(Location.objects.get().doc) == body
    assert pending(receiver) == [("PATCH", "LOC1", ["facilities", "name"])]


def test_patch_with_an_invalid_value_is_400_and_changes_nothing(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()

    response = send(staff, "patch", LOC, {"parking_type": "ROOFTOP"})

    assert response.status_code == 400
    assert "parking_type: must be one of the ParkingType values" in response.json()["detail"]
    assert stored() == before


def test_patch_of_an_unknown_location_is_404(staff: Client, receiver: Partner) -> None:
    response = send(staff, "patch", LOC, {"name": "Nowhere"})
    assert response.status_code == 404
    assert not Location.objects.exists()
    assert not Delivery.objects.exists()


# --- EVSEs and connectors ----------------------------------------------------------------------------------------


def test_evse_put_adds_an_evse_and_bumps_the_location(staff: Client, receiver: Partner) -> None:
    old = created(staff, location(last_updated="2024-05-01T10:00:00Z"))
    delivered_all()

    response = send(staff, "put", f"{LOC}/evses/E3", evse("E3", connectors=2, floor_level="-1"))

    assert response.status_code == 201
    body = response.json()
    assert (body["uid"], body["floor_level"], len(body["connectors"])) == ("E3", "-1", 2)
    assert staff.get(f"{LOC}/evses/E3").json() == body
    doc = orjson.loads(Location.objects.get().doc)
    assert [e["uid"] for e in doc["evses"]] == ["E1", "E2", "E3"]
    assert doc["last_updated"] == body["last_updated"] != old["last_updated"]
    assert pending(receiver) == [("PUT", "LOC1/E3", [])]


def test_evse_put_replaces_an_existing_one(staff: Client) -> None:
    created(staff)
    response = send(staff, "put", f"{LOC}/evses/E1", evse("E1", status="INOPERATIVE", connectors=1))
    assert response.status_code == 200
    assert [c.ocpi_id for c in Connector.objects.filter(evse__uid="E1")] == ["1"]
    assert Evse.objects.get(uid="E1").status == "INOPERATIVE"


def test_evse_put_under_an_unknown_location_is_404_and_stores_nothing(staff: Client, receiver: Partner) -> None:
    response = send(staff, "put", f"{LOC}/evses/E1", evse("E1"))
    assert response.status_code == 404
    assert not Location.objects.exists()
    assert not Evse.objects.exists()
    assert not Delivery.objects.exists()


def test_evse_put_with_another_uid_in_the_body_is_400(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()
    response = send(staff, "put", f"{LOC}/evses/E1", evse("E9"))
    assert response.status_code == 400
    assert "uid:" in response.json()["detail"]
    assert stored() == before


def test_evse_patch_changes_fields_and_pushes_a_patch(staff: Client, receiver: Partner) -> None:
    created(staff)
    delivered_all()

    response = send(staff, "patch", f"{LOC}/evses/E2", {"physical_reference": "P2", "capabilities": ["RESERVABLE"]})

    assert response.status_code == 200
    assert (response.json()["physical_reference"], response.json()["capabilities"]) == ("P2", ["RESERVABLE"])
    stored = Evse.objects.get(uid="E2")  # the columns as written (on PostgreSQL by one hand-written UPDATE)
    assert (stored.physical_reference, stored.capabilities) == ("P2", ["RESERVABLE"])
    assert pending(receiver) == [("PATCH", "LOC1/E2", ["capabilities", "physical_reference"])]


def test_connector_put_and_patch(staff: Client, receiver: Partner) -> None:
    old = created(staff, location(last_updated="2024-05-01T10:00:00Z"))
    delivered_all()
    path = f"{LOC}/evses/E2/connectors/2"

    put = send(staff, "put", path, connector("2", standard="IEC_62196_T2_COMBO", power_type="DC", format="CABLE"))
    assert put.status_code == 201
    assert put.json()["standard"] == "IEC_62196_T2_COMBO"
    patch = send(staff, "patch", path, {"max_amperage": 125, "max_electric_power": 50000})
    assert patch.status_code == 200

    assert (patch.json()["max_amperage"], patch.json()["max_electric_power"]) == (125, 50000)
    assert staff.get(path).json() == patch.json()
    connector_row = Connector.objects.get(evse__uid="E2", ocpi_id="2")
    assert connector_row.max_amperage == 125
    doc = orjson.loads(Location.objects.get().doc)
    assert doc["evses"][1]["connectors"][1] == patch.json()
    # the child change moved its parents' last_updated (REFERENCE §6)
    assert doc["last_updated"] == doc["evses"][1]["last_updated"] == patch.json()["last_updated"]
    assert doc["last_updated"] != old["last_updated"]
    # the PATCH superseded the undelivered PUT of the same connector: one PUT of it, as it is now
    assert pending(receiver) == [("PUT", "LOC1/E2/2", [])]


def test_connector_patch_with_an_invalid_value_is_400_and_changes_nothing(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()
    response = send(staff, "patch", f"{LOC}/evses/E1/connectors/1", {"max_voltage": "high"})
    assert response.status_code == 400
    assert "max_voltage: must be an integer" in response.json()["detail"]
    assert stored() == before


def test_connector_of_an_unknown_evse_is_404(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()
    assert send(staff, "put", f"{LOC}/evses/E9/connectors/1", connector()).status_code == 404
    assert send(staff, "patch", f"{LOC}/evses/E9/connectors/1", {"max_amperage": 8}).status_code == 404
    assert staff.get(f"{LOC}/evses/E9").status_code == 404
    assert stored() == before


# --- EVSE status (the hot path) ----------------------------------------------------------------------------------


def test_status_sets_the_evse_status_and_pushes_a_patch(staff: Client, receiver: Partner) -> None:
    created(staff, location(last_updated="2024-05-01T10:00:00Z"))
    delivered_all()

    response = send(staff, "post", f"{LOC}/evses/E1/status", {"status": "CHARGING"})

    assert response.status_code == 200
    body = response.json()
    validate("EVSE", body)
    assert (body["uid"], body["status"], len(body["connectors"])) == ("E1", "CHARGING", 2)
    assert Evse.objects.get(uid="E1").status == "CHARGING"
    doc = orjson.loads(Location.objects.get().doc)
    assert doc["evses"][0] == body
    assert doc["last_updated"] == body["last_updated"]
    assert pending(receiver) == [("PATCH", "LOC1/E1", ["status"])]


def test_status_at_a_given_time(staff: Client) -> None:
    created(staff, location(evses=[evse("E1"), evse("E2", last_updated="2024-05-01T10:00:00Z")]))
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=5)

    response = send(staff, "post", f"{LOC}/evses/E2/status/", {"status": "OUTOFORDER", "at": at.isoformat()})

    assert response.status_code == 200
    assert response.json()["last_updated"] == format_datetime(at)
    assert Evse.objects.get(uid="E2").last_updated == at


def test_status_older_than_stored_is_409_and_changes_nothing(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()
    response = send(staff, "post", f"{LOC}/evses/E1/status", {"status": "CHARGING", "at": "2020-01-01T00:00:00Z"})
    assert response.status_code == 409
    assert stored() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [({"status": "BUSY"}, "status"), ({}, "status"), ({"status": "CHARGING", "at": "yesterday"}, "at")],
)
def test_invalid_status_is_400_naming_the_field(staff: Client, receiver: Partner, body: Any, field: str) -> None:
    created(staff)
    before = stored()
    response = send(staff, "post", f"{LOC}/evses/E1/status", body)
    assert response.status_code == 400
    assert field in response.json()
    assert stored() == before


def test_status_of_an_unknown_evse_or_location_is_404(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()
    assert send(staff, "post", f"{LOC}/evses/E9/status", {"status": "CHARGING"}).status_code == 404
    assert send(staff, "post", f"{BASE}NL/OWN/LOC9/evses/E1/status", {"status": "CHARGING"}).status_code == 404
    assert stored() == before


def test_status_under_a_foreign_party_is_400(staff: Client, receiver: Partner) -> None:
    response = send(staff, "post", f"{BASE}DE/PRT/LOC1/evses/E1/status", {"status": "CHARGING"})
    assert response.status_code == 400
    assert "DE*PRT" in response.json()["detail"]


# --- reading -----------------------------------------------------------------------------------------------------


def test_list_pages_and_filters_own_locations_only(staff: Client, own_parties: list[Party]) -> None:
    Party.objects.create(country_code="NL", party_id="TWO", role=Role.CPO, name="Second CPO")
    created(staff, location("LOC1", city="Utrecht"))
    created(staff, location("LOC2", city="Amsterdam"))
    created(staff, location("LOC3", party_id="TWO", city="Amsterdam"))
    send(staff, "post", f"{BASE}NL/OWN/LOC2/evses/E2/status", {"status": "CHARGING"})
    # a partner's location (received over OCPI) is not ours: never listed
    partner, _ = make_partner(name="cpo", roles=(("DE", "PRT", Role.CPO),))
    foreign = {**copy.deepcopy(location("LOC1")), "country_code": "DE", "party_id": "PRT"}
    location_put(
        partner=partner,
        key=Key("DE", "PRT", "LOC1"),
        data=stamped(foreign, "Location", format_datetime(timezone.now())),
    )

    def ids(query: dict[str, Any]) -> list[str]:
        response = staff.get(BASE, query)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    assert ids({}) == ["LOC1", "LOC2", "LOC3"]
    assert ids({"party": "NL*TWO"}) == ["LOC3"]
    assert ids({"party": "nl*own", "city": "amsterdam"}) == ["LOC2"]
    assert ids({"status": "CHARGING"}) == ["LOC2"]
    page = staff.get(BASE, {"limit": 2}).json()
    assert (page["count"], len(page["results"]), page["previous"]) == (3, 2, None)
    assert "offset=2" in page["next"]
    assert staff.get(page["next"]).json()["results"][0]["id"] == "LOC3"
    for item in staff.get(BASE).json()["results"]:
        validate("Location", item)


def test_list_with_an_unknown_status_is_400(staff: Client) -> None:
    response = staff.get(BASE, {"status": "BUSY"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("status:")


def test_get_of_an_unknown_location_is_404(staff: Client) -> None:
    assert staff.get(LOC).status_code == 404
    assert staff.get(f"{BASE}DE/PRT/LOC1").status_code == 400  # not one of our parties
