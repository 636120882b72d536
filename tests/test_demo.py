"""`manage.py ocpi_demo`: idempotent demo parties, locations, tariffs, tokens and completed sessions with priced CDRs,
served to partners as valid OCPI objects."""

import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.apps import apps
from django.core.management import call_command

from conftest import make_partner
from locations.models import Connector, Evse, Location
from ocpi_core.management.commands.ocpi_demo import demo_session_ids, demo_tariff_ids
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, Party
from ocpi_core.validation import validate

DEMO_CITIES = {"Amsterdam", "Utrecht", "Rotterdam"}


def demo(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("ocpi_demo", *args, stdout=out)
    return json.loads(out.getvalue())


def snapshot() -> tuple[Any, ...]:
    tariffs: list[Any] = []
    if apps.is_installed("tariffs"):
        tariffs = sorted(apps.get_model("tariffs", "Tariff").objects.values_list("ocpi_id", "last_updated"))
    return (
        sorted(Party.objects.values_list("country_code", "party_id", "role", "partner")),
        sorted(Location.objects.values_list("ocpi_id", "last_updated", "doc")),
        sorted(Evse.objects.values_list("uid", "status", "last_updated")),
        Connector.objects.count(),
        tariffs,
        Delivery.objects.count(),
        sorted(apps.get_model("sessions_app", "Session").objects.values_list("ocpi_id", "last_updated", "doc")),
        sorted(apps.get_model("cdrs", "Cdr").objects.values_list("ocpi_id", "session_id", "doc")),
    )


def receiving(partner: Partner, *modules: str) -> Partner:
    for module in modules:
        PartnerEndpoint.objects.create(
            partner=partner, identifier=module, role="RECEIVER", url=f"http://127.0.0.1:9/ocpi/2.2.1/{module}"
        )
    return partner


def test_demo_twice_is_idempotent_and_pushes_only_new_objects(db: None) -> None:
    # given a registered partner receiving locations and tariffs (on a fresh bootstrap there is none)
    partner, _ = make_partner()
    receiving(partner, "locations", "tariffs")

    first = demo()
    after_first = snapshot()
    second = demo()

    assert first["own_parties"] == second["own_parties"] == ["NL*DMC CPO", "NL*DME EMSP"]
    assert first["created"]["locations"] == ["DMC-AMSTERDAM-01", "DMC-UTRECHT-01", "DMC-ROTTERDAM-01"]
    assert first["created"]["tokens"] == ["DME0001A1", "DME0002B2", "DME0003C3", "DME-APP-0004"]
    assert first["created"]["sessions"] == ["DMC-DEMO-SESSION-1", "DMC-DEMO-SESSION-2", "DMC-DEMO-SESSION-3"]
    assert len(first["created"]["cdrs"]) == 3
    assert second["created"] == {"tariffs": [], "locations": [], "tokens": [], "sessions": [], "cdrs": []}
    assert snapshot() == after_first
    pushed = sorted(Delivery.objects.filter(partner=partner).values_list("module", "method", "object_path"))
    expected = [("locations", "PUT", location_id) for location_id in first["created"]["locations"]]
    expected += [("tariffs", "PUT", tariff_id) for tariff_id in first["created"]["tariffs"]]
    assert pushed == sorted(expected)


def test_demo_tokens_are_valid_own_tokens_of_the_demo_emsp(db: None) -> None:
    from tokens.models import Token

    demo()
    tokens = Token.objects.filter(partner=None, party_id="DME").order_by("uid")
    assert [(t.uid, t.type, t.valid, t.whitelist) for t in tokens] == [
        ("DME-APP-0004", "APP_USER", True, "ALLOWED"),
        ("DME0001A1", "RFID", True, "ALLOWED"),
        ("DME0002B2", "RFID", True, "NEVER"),
        ("DME0003C3", "RFID", False, "ALLOWED"),
    ]
    for token in tokens:
        validate("Token", json.loads(token.doc))


def test_demo_sessions_are_completed_with_periods_and_priced_cdrs(db: None) -> None:
    from cdrs.models import Cdr
    from sessions_app.models import Session

    created = demo()["created"]

    sessions = Session.objects.filter(partner=None, party_id="DMC").order_by("ocpi_id")
    assert [s.ocpi_id for s in sessions] == demo_session_ids("DMC") == created["sessions"]
    assert {s.location_id for s in sessions} == {"DMC-ROTTERDAM-01", "DMC-UTRECHT-01", "DMC-AMSTERDAM-01"}
    for session in sessions:
        assert session.status == "COMPLETED"
        assert (session.token_party_id, session.token_uid) == ("DME", "DME0001A1")
        assert session.end_date_time is not None
        assert session.end_date_time > session.start_date_time
        assert len(session.charging_periods or []) >= 3
        assert session.kwh > 0
        validate("Session", json.loads(session.doc))
    cdrs = Cdr.objects.filter(partner=None, party_id="DMC", credit=False).order_by("session_id")
    assert sorted(created["cdrs"]) == sorted(cdr.ocpi_id for cdr in cdrs)
    assert [cdr.session_id for cdr in cdrs] == created["sessions"]
    for cdr in cdrs:
        data = cdr.data
        validate("CDR", json.loads(cdr.doc))
        assert data["total_cost"]["excl_vat"] > 0
        assert data["total_cost"]["incl_vat"] > data["total_cost"]["excl_vat"]
        assert data["tariffs"]
        assert cdr.pricing
        assert cdr.pricing["lines"]
        assert "remark" not in data
    garage = cdrs.get(session_id="DMC-DEMO-SESSION-3").data
    assert garage["total_parking_cost"]["excl_vat"] > 0  # parked after charging
    fast = cdrs.get(session_id="DMC-DEMO-SESSION-2").data
    assert fast["total_time_cost"]["excl_vat"] > 0  # past the first 45 minutes


def test_demo_without_partners_writes_no_outbox_rows(db: None) -> None:
    demo()
    assert Location.objects.filter(partner=None, party_id="DMC").count() == 3
    assert not Delivery.objects.exists()


def test_demo_second_run_only_looks(db: None, django_assert_max_num_queries: Any) -> None:
    demo()
    with django_assert_max_num_queries(20):  # parties and one lookup per demo object: nothing rendered or written
        demo()


def test_party_prefix_gives_distinct_ids(db: None) -> None:
    demo()
    prefixed = demo("--party-prefix", "AA")

    assert prefixed["own_parties"] == ["NL*AAC CPO", "NL*AAE EMSP"]
    default_ids = set(Location.objects.filter(party_id="DMC").values_list("ocpi_id", flat=True))
    prefixed_ids = set(Location.objects.filter(party_id="AAC").values_list("ocpi_id", flat=True))
    assert len(default_ids) == len(prefixed_ids) == 3
    assert not default_ids & {i.upper() for i in prefixed_ids}
    evse_ids = list(Evse.objects.values_list("evse_id", flat=True))
    assert len(evse_ids) == len(set(evse_ids))
    assert all((evse_id or "").startswith(("NL*DMC*E", "NL*AAC*E")) for evse_id in evse_ids)


def test_demo_locations_reach_a_partner_as_valid_ocpi_objects(
    ocpi: Callable[..., httpx.Client], registered_partner: tuple[Partner, str]
) -> None:
    # given the demo data, when a registered partner pulls our locations over real HTTP
    demo()
    _, token = registered_partner

    response = ocpi(token).get("/ocpi/2.2.1/cpo/locations")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status_code"] == 1000
    locations = [item for item in body["data"] if item["party_id"] == "DMC"]
    assert len(locations) == 3
    for item in locations:
        validate("Location", item)
        assert 1 <= len(item["evses"]) <= 4
        assert all(1 <= len(evse["connectors"]) <= 2 for evse in item["evses"])
    assert {item["city"] for item in locations} == DEMO_CITIES
    assert sum("opening_times" in item and not item["opening_times"]["twentyfourseven"] for item in locations) >= 1
    assert sum("energy_mix" in item for item in locations) >= 1
    tariff_ids = {t for item in locations for e in item["evses"] for c in e["connectors"] for t in c["tariff_ids"]}
    assert tariff_ids == set(demo_tariff_ids("DMC").values())
    # each location as its own GET returns the same object
    for item in locations:
        single = ocpi(token).get(f"/ocpi/2.2.1/cpo/locations/{item['id']}")
        assert single.json()["data"] == item


def test_demo_tariffs_reach_a_partner_as_valid_ocpi_objects(
    ocpi: Callable[..., httpx.Client], registered_partner: tuple[Partner, str]
) -> None:
    if not apps.is_installed("tariffs"):
        pytest.skip("the tariffs module is not installed")
    demo()
    _, token = registered_partner

    response = ocpi(token).get("/ocpi/2.2.1/cpo/tariffs")

    assert response.status_code == 200, response.text
    tariffs = [item for item in response.json()["data"] if item["party_id"] == "DMC"]
    assert {item["id"] for item in tariffs} == set(demo_tariff_ids("DMC").values())
    for item in tariffs:
        validate("Tariff", item)
        assert item["currency"] == "EUR"
    dimensions = {c["type"] for item in tariffs for e in item["elements"] for c in e["price_components"]}
    assert dimensions == {"FLAT", "ENERGY", "TIME", "PARKING_TIME"}
