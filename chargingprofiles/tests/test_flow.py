"""ChargingProfiles end to end on a real Celery worker consuming from Redis: the result reaches the sender's
response_url (a local HTTP server), the simulator applies the profile, and our own eMSP side talks to our own CPO
side over real HTTP (set, get, clear, results stored, unsolicited ActiveChargingProfile updates)."""

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker

from chargingprofiles.models import ActiveProfileUpdate, CallbackStatus, ChargingProfileRequest, Direction
from chargingprofiles.services import chargingprofile_active_changed, chargingprofile_send
from chargingprofiles.tests.factories import charging_session, emsp_partner, profile
from config.celery_app import app
from conftest import envelope_body, make_partner
from gateway.models import SimulatedSession
from ocpi_core.constants import Role
from ocpi_core.crypto import token_encrypt
from ocpi_core.models import PartnerEndpoint
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_broker")]

URL = "/ocpi/2.2.1/cpo/chargingprofiles"


@pytest.fixture(autouse=True)
def _no_rate_limit(settings: Any) -> None:
    settings.OCPI_CHARGINGPROFILES_MIN_INTERVAL_SECONDS = 0


@pytest.fixture
def worker() -> Iterator[Any]:
    with start_worker(app, pool="solo", queues=["commands"], perform_ping_check=False, shutdown_timeout=30) as running:
        yield running


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            rows = list(ChargingProfileRequest.objects.values("direction", "kind", "response", "result", "last_error"))
            pytest.fail(f"{what}: not within {timeout} s; {rows}")
        time.sleep(0.05)
    return result


def test_result_reaches_the_response_url_and_the_simulator_applies_the_profile(ocpi, own_parties, httpserver, worker):
    _, token = emsp_partner()
    session = charging_session()
    httpserver.expect_request("/results/42", method="POST").respond_with_data(
        envelope_body(), content_type="application/json"
    )
    body = {"charging_profile": profile(limit=3700.0), "response_url": httpserver.url_for("/results/42")}

    response = ocpi(token).put(f"{URL}/{session.ocpi_id}", json=body)

    assert response.json()["data"]["result"] == "ACCEPTED"
    row = wait_until(
        lambda: ChargingProfileRequest.objects.filter(callback_status=CallbackStatus.SENT).first(), "result sent"
    )
    (request, _), *_ = httpserver.log
    assert json.loads(request.data) == {"result": "ACCEPTED"}
    assert (request.headers["OCPI-to-country-code"], request.headers["OCPI-to-party-id"]) == ("DE", "PRT")
    assert (request.headers["OCPI-from-country-code"], request.headers["OCPI-from-party-id"]) == ("NL", "OWN")
    assert row.result == "ACCEPTED"
    assert SimulatedSession.objects.get(session_id=session.ocpi_id).charging_profile == profile(limit=3700.0)


def test_an_unreachable_response_url_is_tried_a_few_times_then_failed(ocpi, own_parties, worker, settings):
    _, token = emsp_partner()
    session = charging_session()

    ocpi(token).delete(f"{URL}/{session.ocpi_id}", params={"response_url": "http://127.0.0.1:9/nobody"})

    row = wait_until(
        lambda: ChargingProfileRequest.objects.filter(callback_status=CallbackStatus.FAILED).first(), "gave up"
    )
    assert row.result == "ACCEPTED"  # the charger cleared it; only the sender could not be told
    assert "cannot reach" in row.last_error


def test_our_emsp_side_sets_gets_and_clears_on_our_cpo_side(ocpi, ocpi_base_url, own_parties, worker):
    # One platform in both roles: the "partner" is this platform itself, announced as NL*OWN (CPO) and NL*OWE (eMSP).
    loop, token = make_partner(name="loop", roles=(("NL", "OWN", Role.CPO), ("NL", "OWE", Role.EMSP)))
    loop.token_out_encrypted = token_encrypt(token)
    loop.save()
    for role, path in (("RECEIVER", "cpo"), ("SENDER", "emsp")):
        PartnerEndpoint.objects.create(
            partner=loop,
            identifier="chargingprofiles",
            role=role,
            url=f"{ocpi_base_url}/ocpi/2.2.1/{path}/chargingprofiles",
        )
    session = charging_session("NL", "OWE")

    sent = chargingprofile_send(partner=loop, session_id=session.ocpi_id, kind="SET", charging_profile=profile(1500.0))
    assert (sent.response, sent.timeout, sent.last_error) == ("ACCEPTED", 30, "")
    wait_until(lambda: ChargingProfileRequest.objects.filter(pk=sent.pk, result="ACCEPTED").exists(), "SET result")

    active = chargingprofile_send(partner=loop, session_id=session.ocpi_id, kind="ACTIVE", duration=600)
    active = wait_until(
        lambda: ChargingProfileRequest.objects.filter(pk=active.pk, result="ACCEPTED").first(), "ACTIVE result"
    )
    periods = active.active_profile["charging_profile"]["charging_profile_period"]
    assert periods[0]["limit"] <= 1500.0  # the simulator limits the session's power to the profile
    assert active.active_profile["charging_profile"]["duration"] == 600

    updates = chargingprofile_active_changed(session=session)
    assert len(updates) == 1
    wait_until(
        lambda: ActiveProfileUpdate.objects.filter(direction=Direction.SENT, status="SENT").exists(), "update sent"
    )
    received_update = ActiveProfileUpdate.objects.get(direction=Direction.RECEIVED)
    assert (received_update.session_id, received_update.cpo_party_id) == (session.ocpi_id, "OWN")

    cleared = chargingprofile_send(partner=loop, session_id=session.ocpi_id, kind="CLEAR")
    wait_until(lambda: ChargingProfileRequest.objects.filter(pk=cleared.pk, result="ACCEPTED").exists(), "CLEAR")
    assert SimulatedSession.objects.get(session_id=session.ocpi_id).charging_profile is None
    received = ChargingProfileRequest.objects.filter(direction=Direction.RECEIVED).order_by("pk")
    assert [r.kind for r in received] == ["SET", "ACTIVE", "CLEAR"]
    wait_until(lambda: not received.exclude(callback_status=CallbackStatus.SENT).exists(), "every result sent")
