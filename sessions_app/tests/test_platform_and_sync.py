"""Platform API for sessions (/api/sessions/, JWT staff), the pull of partners' sessions (we are the eMSP), and
charging preferences sent to a partner CPO, against partner platforms served over local HTTP (pytest-httpserver)."""

import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.test import Client
from pytest_httpserver import HTTPServer

from conftest import envelope_body, make_partner
from ocpi_core.constants import Role
from ocpi_core.exceptions import UnableToUseClientApi
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, Party
from ocpi_core.sync import sync_run
from sessions_app.models import Session
from sessions_app.services import session_charging_preferences_send
from sessions_app.tests.factories import cdr_token, own_charging_location, session_data

BASE = "/api/sessions/"


def send(client: Client, method: str, path: str, data: Any = None) -> Any:
    payload = orjson.dumps(data) if data is not None else None
    return getattr(client, method)(path, data=payload, content_type="application/json")


def exact(response: Any) -> Any:
    return json.loads(response.content, parse_float=Decimal)


def cpo_partner(httpserver: HTTPServer) -> Partner:
    """A registered CPO partner (DE*CPO) whose Sessions Sender is served by `httpserver`."""
    partner, _ = make_partner(name="cpo", base_url=httpserver.url_for("/ocpi"), roles=(("DE", "CPO", Role.CPO),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="sessions", role="SENDER", url=httpserver.url_for("/ocpi/2.2.1/sessions")
    )
    return partner


def test_platform_start_update_stop_and_read(staff: Client) -> None:
    own_charging_location()
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    PartnerEndpoint.objects.create(partner=emsp, identifier="sessions", role="RECEIVER", url="http://127.0.0.1:9/s")
    Delivery.objects.all().delete()
    start = {
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "cdr_token": cdr_token(),
        "auth_method": "AUTH_REQUEST",
        "session_id": "P1",
    }
    response = send(staff, "post", BASE, start)
    assert response.status_code == 201, response.content
    assert exact(response)["id"] == "P1"
    assert exact(response)["status"] == "ACTIVE"
    path = f"{BASE}NL/OWN/P1"

    period = {"start_date_time": "2024-01-01T00:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 0.333}]}
    response = send(staff, "patch", path, {"kwh": "0.333", "charging_period": period, "total_cost": {"excl_vat": 0.1}})
    assert response.status_code == 200, response.content
    got = exact(response)
    assert got["kwh"] == Decimal("0.333")
    assert got["charging_periods"][0]["dimensions"][0]["volume"] == Decimal("0.333")
    assert got["total_cost"] == {"excl_vat": Decimal("0.1")}

    response = send(staff, "post", f"{path}/stop", {})
    assert response.status_code == 200
    assert exact(response)["status"] == "COMPLETED"
    assert send(staff, "post", f"{path}/stop", {}).status_code == 400  # already stopped

    listed = exact(send(staff, "get", BASE))
    assert listed["count"] == 1
    assert listed["results"][0]["id"] == "P1"
    assert exact(send(staff, "get", path))["end_date_time"]
    assert set(Delivery.objects.values_list("partner__name", flat=True)) == {"emsp"}

    before = list(Session.objects.values())
    assert send(staff, "post", BASE, {**start, "session_id": "P2", "location_id": "NOPE"}).status_code == 404
    assert send(staff, "post", BASE, {**start, "session_id": "P2", "auth_method": "MAGIC"}).status_code == 400
    assert send(staff, "post", BASE, {**start, "session_id": "P2", "status": "RESERVED"}).status_code == 400
    assert send(staff, "patch", f"{BASE}NL/OWN/NOPE", {"kwh": 1}).status_code == 404
    assert send(staff, "patch", path, {"kwh": -1}).status_code == 400
    assert list(Session.objects.values()) == before
    assert Client().get(BASE).status_code == 401


def test_pull_stores_the_partners_sessions(own_parties: list[Party], httpserver: HTTPServer) -> None:
    partner = cpo_partner(httpserver)
    good = session_data("S1", kwh=12.345)
    bad = session_data("S2", status="RESERVED")
    foreign = session_data("S3", country_code="FR", party_id="XYZ")
    httpserver.expect_request("/ocpi/2.2.1/sessions", method="GET").respond_with_data(
        envelope_body([good, bad, foreign]), headers={"X-Total-Count": "3", "X-Limit": "100"}
    )
    run = sync_run(partner=partner, module="sessions")
    assert run.errors == 2, run.message
    session = Session.objects.get()
    assert (session.partner, session.ocpi_id, session.kwh) == (partner, "S1", Decimal("12.345"))
    assert "S2" in run.message
    assert "S3" in run.message


def test_charging_preferences_sent_to_the_cpo(own_parties: list[Party], httpserver: HTTPServer) -> None:
    partner = cpo_partner(httpserver)
    httpserver.expect_request("/ocpi/2.2.1/sessions", method="GET").respond_with_data(envelope_body([session_data()]))
    sync_run(partner=partner, module="sessions")
    session = Session.objects.get()
    prefs = {"profile_type": "FAST", "energy_need": 20.5}
    httpserver.expect_ordered_request(
        "/ocpi/2.2.1/sessions/S1/charging_preferences", method="PUT", json=prefs
    ).respond_with_data(envelope_body("ACCEPTED"))
    assert session_charging_preferences_send(session=session, data=prefs) == "ACCEPTED"
    session.refresh_from_db()
    assert session.charging_preferences == {"profile_type": "FAST", "energy_need": Decimal("20.5")}
    assert session.charging_preferences_result == "ACCEPTED"

    httpserver.expect_ordered_request("/ocpi/2.2.1/sessions/S1/charging_preferences", method="PUT").respond_with_data(
        envelope_body(None, 2001, "EVSE not capable"), status=404
    )
    with pytest.raises(UnableToUseClientApi):
        session_charging_preferences_send(session=session, data={"profile_type": "GREEN"})
    session.refresh_from_db()
    assert session.charging_preferences["profile_type"] == "FAST"  # the refused ones are not in effect
    assert session.charging_preferences_result.startswith("ERROR")
