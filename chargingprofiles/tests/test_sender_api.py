"""eMSP/SCSP side (REFERENCE §12.2) through real HTTP: a request sent to a CPO partner (a local HTTP server), the
result POSTed to our per-request response_url, and unsolicited ActiveChargingProfile PUTs; errors leave nothing
changed."""

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from chargingprofiles.models import ActiveProfileUpdate, ChargingProfileRequest
from chargingprofiles.services import chargingprofile_send
from chargingprofiles.tests.factories import profile
from conftest import envelope_body, make_partner
from ocpi_core.constants import Role
from ocpi_core.exceptions import InvalidParameters
from ocpi_core.models import PartnerEndpoint

ACTIVE = {
    "start_date_time": "2024-01-01T10:00:00Z",
    "charging_profile": {"charging_rate_unit": "A", "charging_profile_period": [{"start_period": 0, "limit": 16}]},
}


@pytest.fixture
def cpo(own_parties: Any, httpserver: Any, ocpi_base_url: str) -> tuple[Any, str]:
    """A CPO partner whose chargingprofiles Receiver is the local HTTP server; it answers ACCEPTED, timeout 20."""
    partner, token = make_partner(name="cpo", roles=(("DE", "CPX", Role.CPO),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="chargingprofiles", role="RECEIVER", url=httpserver.url_for("/cp")
    )
    httpserver.expect_request("/cp/S1").respond_with_data(
        envelope_body({"result": "ACCEPTED", "timeout": 20}), content_type="application/json"
    )
    return partner, token


def test_set_is_sent_and_its_result_stored(ocpi, cpo, httpserver):
    partner, token = cpo

    sent = chargingprofile_send(partner=partner, session_id="S1", kind="SET", charging_profile=profile())

    (request, _), *_ = httpserver.log
    assert request.method == "PUT"
    assert json.loads(request.data) == {"charging_profile": profile(), "response_url": sent.response_url}
    assert (request.headers["OCPI-to-party-id"], request.headers["OCPI-from-party-id"]) == ("CPX", "OWE")
    assert (sent.response, sent.timeout) == ("ACCEPTED", 20)
    posted = ocpi(token).post(urlsplit(sent.response_url).path, json={"result": "REJECTED"})
    assert (posted.status_code, posted.json()["status_code"]) == (200, 1000)
    assert "data" not in posted.json()
    assert ChargingProfileRequest.objects.get(pk=sent.pk).result == "REJECTED"


def test_get_sends_duration_and_stores_the_active_profile(ocpi, cpo, httpserver):
    partner, token = cpo

    sent = chargingprofile_send(partner=partner, session_id="S1", kind="ACTIVE", duration=300)
    posted = ocpi(token).post(urlsplit(sent.response_url).path, json={"result": "ACCEPTED", "profile": ACTIVE})

    (request, _), *_ = httpserver.log
    assert (request.method, request.args["duration"], request.args["response_url"]) == ("GET", "300", sent.response_url)
    assert "/active/" in sent.response_url
    assert posted.json()["status_code"] == 1000
    assert ChargingProfileRequest.objects.get(pk=sent.pk).active_profile == ACTIVE


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"result": "MAYBE"}, "result: must be one of the ChargingProfileResultType values"),
        ({"result": "ACCEPTED", "profile": {"start_date_time": "x"}}, "profile.start_date_time"),
        ({}, "result: is required"),
    ],
)
def test_an_invalid_result_is_2001_and_changes_nothing(ocpi, cpo, body, words):
    partner, token = cpo
    sent = chargingprofile_send(partner=partner, session_id="S1", kind="ACTIVE", duration=300)

    posted = ocpi(token).post(urlsplit(sent.response_url).path, json=body)

    assert (posted.status_code, posted.json()["status_code"]) == (200, 2001)
    assert words in posted.json()["status_message"]
    assert ChargingProfileRequest.objects.get(pk=sent.pk).result == ""


def test_a_result_from_another_partner_or_for_another_kind_is_404(ocpi, cpo):
    partner, _ = cpo
    _, other_token = make_partner(name="other", roles=(("DE", "OTH", Role.CPO),))
    sent = chargingprofile_send(partner=partner, session_id="S1", kind="CLEAR")
    path = urlsplit(sent.response_url).path

    foreign = ocpi(other_token).post(path, json={"result": "ACCEPTED"})
    wrong_kind = ocpi(cpo[1]).post(path.replace("/clear/", "/set/"), json={"result": "ACCEPTED"})

    assert (foreign.status_code, wrong_kind.status_code) == (404, 404)
    assert ChargingProfileRequest.objects.get(pk=sent.pk).result == ""


def test_unsolicited_active_profile_is_stored_and_validated(ocpi, cpo):
    _, token = cpo
    url = "/ocpi/2.2.1/emsp/chargingprofiles/S1"

    ok = ocpi(token).put(url, json=ACTIVE)
    bad = ocpi(token).put(url, json={"start_date_time": "2024-01-01T10:00:00Z"})

    assert (ok.status_code, ok.json()["status_code"]) == (200, 1000)
    assert (bad.status_code, bad.json()["status_code"]) == (200, 2001)
    assert "charging_profile: is required" in bad.json()["status_message"]
    update = ActiveProfileUpdate.objects.get()
    assert (update.session_id, update.profile, update.cpo_party_id) == ("S1", ACTIVE, "CPX")


def test_send_checks_its_input_before_calling(cpo, httpserver):
    partner, _ = cpo
    no_endpoint, _ = make_partner(name="bare", roles=(("DE", "BAR", Role.CPO),))

    with pytest.raises(InvalidParameters, match="duration: is required"):
        chargingprofile_send(partner=partner, session_id="S1", kind="ACTIVE")
    with pytest.raises(InvalidParameters, match=r"charging_profile.charging_rate_unit"):
        chargingprofile_send(partner=partner, session_id="S1", kind="SET", charging_profile={"x": 1})
    with pytest.raises(InvalidParameters, match="offers no chargingprofiles Receiver"):
        chargingprofile_send(partner=no_endpoint, session_id="S1", kind="CLEAR")
    assert httpserver.log == []
    assert ChargingProfileRequest.objects.count() == 0


def test_answers_to_a_cpo_come_from_our_scsp_party_that_sends_the_requests(ocpi, cpo, httpserver):
    """Without routing headers, the answer's `OCPI-from-*` is our party serving the interface (README, "Routing
    headers of an answer"; transport_and_format "Direct response": from the receiving party). On the ChargingProfiles
    Sender interface that is our SCSP party, the one our requests go out from, not our eMSP party."""
    from ocpi_core.models import Party

    Party.objects.create(country_code="NL", party_id="SCS", role=Role.SCSP, name="Own SCSP")
    partner, token = cpo
    sent = chargingprofile_send(partner=partner, session_id="S1", kind="SET", charging_profile=profile())

    posted = ocpi(token).post(urlsplit(sent.response_url).path, json={"result": "ACCEPTED"})
    pushed = ocpi(token).put("/ocpi/2.2.1/emsp/chargingprofiles/S1", json=ACTIVE)

    (request, _), *_ = httpserver.log
    assert (request.headers["OCPI-from-country-code"], request.headers["OCPI-from-party-id"]) == ("NL", "SCS")
    for answer in (posted, pushed):
        assert answer.json()["status_code"] == 1000
        assert (answer.headers["OCPI-from-country-code"], answer.headers["OCPI-from-party-id"]) == ("NL", "SCS")
        assert (answer.headers["OCPI-to-country-code"], answer.headers["OCPI-to-party-id"]) == ("DE", "CPX")
