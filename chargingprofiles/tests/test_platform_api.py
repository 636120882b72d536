"""Platform API for charging profiles (/api/chargingprofiles/): staff set, get and clear profiles on a partner CPO's
session (the CPO is a local HTTP server), list and read the requests with their response and result."""

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from chargingprofiles.models import ChargingProfileRequest
from chargingprofiles.tests.factories import profile
from conftest import envelope_body, make_partner
from ocpi_core.constants import Role
from ocpi_core.models import PartnerEndpoint


@pytest.fixture
def staff(own_parties: Any) -> Client:
    """A Django test client carrying a staff user's JWT."""
    get_user_model().objects.create_user("operator", password="pw-operator-1", is_staff=True)
    client = Client()
    tokens = client.post(
        "/api/token/", {"username": "operator", "password": "pw-operator-1"}, content_type="application/json"
    )
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {tokens.json()['access']}"
    return client


@pytest.fixture
def cpo(own_parties: Any, httpserver: Any) -> tuple[Any, str]:
    """A CPO partner (DE*CPX) whose chargingprofiles Receiver is the local HTTP server, answering ACCEPTED."""
    partner, token = make_partner(name="cpo", roles=(("DE", "CPX", Role.CPO),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="chargingprofiles", role="RECEIVER", url=httpserver.url_for("/cp")
    )
    httpserver.expect_request("/cp/S1").respond_with_data(
        envelope_body({"result": "ACCEPTED", "timeout": 15}), content_type="application/json"
    )
    return partner, token


def _send(staff: Client, **body: Any) -> Any:
    return staff.post("/api/chargingprofiles/", json.dumps(body), content_type="application/json")


def test_set_get_clear_are_sent_and_listed_with_response_and_result(staff, cpo, httpserver, ocpi):
    partner, token = cpo

    sent = _send(staff, partner=partner.pk, session_id="S1", kind="set", charging_profile=profile(3700.0))
    got = _send(staff, partner=partner.pk, session_id="S1", kind="get", duration=600)
    cleared = _send(staff, partner=partner.pk, session_id="S1", kind="clear")

    assert [r.status_code for r in (sent, got, cleared)] == [201, 201, 201]
    assert [r.json()["kind"] for r in (sent, got, cleared)] == ["SET", "ACTIVE", "CLEAR"]
    assert {r.json()["response"] for r in (sent, got, cleared)} == {"ACCEPTED"}
    put, get, delete = (request for request, _ in httpserver.log)
    assert (put.method, get.method, delete.method) == ("PUT", "GET", "DELETE")
    assert json.loads(put.data) == {"charging_profile": profile(3700.0), "response_url": sent.json()["response_url"]}
    assert parse_qs(urlsplit(get.url).query)["duration"] == ["600"]
    assert put.headers["OCPI-to-party-id"] == "CPX"
    # the CPO POSTs the result to the request's own response_url: the platform API shows it
    posted = ocpi(token).post(urlsplit(sent.json()["response_url"]).path, json={"result": "ACCEPTED"})
    assert posted.json()["status_code"] == 1000
    shown = staff.get(f"/api/chargingprofiles/{sent.json()['id']}/").json()
    assert (shown["result"], shown["response"], shown["partner"], shown["direction"]) == (
        "ACCEPTED",
        "ACCEPTED",
        "cpo",
        "SENT",
    )
    assert shown["charging_profile"] == profile(3700.0)
    listed = staff.get("/api/chargingprofiles/", {"kind": "SET", "session_id": "S1"}).json()
    assert [r["id"] for r in listed["results"]] == [sent.json()["id"]]
    assert staff.get("/api/chargingprofiles/", {"direction": "RECEIVED"}).json()["count"] == 0
    assert staff.get("/api/chargingprofiles/", {"partner": partner.pk}).json()["count"] == 3


def test_bad_input_is_400_and_sends_nothing(staff, cpo, httpserver):
    partner, _ = cpo
    missing_profile = _send(staff, partner=partner.pk, session_id="S1", kind="set")
    missing_duration = _send(staff, partner=partner.pk, session_id="S1", kind="get")
    bad_kind = _send(staff, partner=partner.pk, session_id="S1", kind="stop")
    bad_profile = _send(
        staff, partner=partner.pk, session_id="S1", kind="set", charging_profile={"charging_rate_unit": "X"}
    )
    unregistered, _ = make_partner(name="gone", status="UNREGISTERED", roles=(("DE", "CPY", Role.CPO),))
    not_registered = _send(staff, partner=unregistered.pk, session_id="S1", kind="clear")

    assert "charging_profile" in missing_profile.json()
    assert "duration" in missing_duration.json()
    assert "kind" in bad_kind.json()
    assert "charging_rate_unit" in bad_profile.json()["detail"]
    assert "partner" in not_registered.json()
    assert {r.status_code for r in (missing_profile, missing_duration, bad_kind, bad_profile, not_registered)} == {400}
    assert httpserver.log == []
    assert ChargingProfileRequest.objects.count() == 0


def test_an_unreachable_cpo_is_stored_with_its_error(staff, own_parties):
    partner, _ = make_partner(name="down", roles=(("DE", "CPD", Role.CPO),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="chargingprofiles", role="RECEIVER", url="http://127.0.0.1:9/cp"
    )
    answer = _send(staff, partner=partner.pk, session_id="S9", kind="clear")
    assert answer.status_code == 201
    assert (answer.json()["response"], answer.json()["result"]) == ("", "")
    assert answer.json()["last_error"]


def test_platform_api_needs_staff(cpo):
    assert Client().get("/api/chargingprofiles/").status_code == 401
    assert Client().post("/api/chargingprofiles/", {}, content_type="application/json").status_code == 401
