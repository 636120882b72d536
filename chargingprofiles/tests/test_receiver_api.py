"""CPO Receiver /ocpi/2.2.1/cpo/chargingprofiles/{session_id} through real HTTP (REFERENCE §12.1): GET, PUT and
DELETE answer a ChargingProfileResponse at once; invalid input is 2001 naming the field and stores nothing."""

from typing import Any

import pytest

from chargingprofiles.models import ChargingProfileRequest, Direction, ResponseType
from chargingprofiles.tests.factories import charging_session, emsp_partner, profile
from conftest import make_partner
from ocpi_core.constants import Role
from sessions_app.services import session_stop

URL = "/ocpi/2.2.1/cpo/chargingprofiles"
CALLBACK = "http://127.0.0.1:9/results/1"


@pytest.fixture
def emsp(own_parties: Any) -> tuple[Any, str]:
    return emsp_partner()


@pytest.fixture
def session(own_parties: Any) -> Any:
    return charging_session()


def answer(response: Any) -> tuple[int, int, str | None]:
    body = response.json()
    return response.status_code, body["status_code"], (body.get("data") or {}).get("result")


def test_put_get_delete_are_accepted_with_the_timeout(ocpi, emsp, session, settings):
    # back to back on one session, with the shipped settings: no TOO_OFTEN unless an operator sets an interval
    _, token = emsp
    client = ocpi(token)

    put = client.put(f"{URL}/{session.ocpi_id}", json={"charging_profile": profile(), "response_url": CALLBACK})
    get = client.get(f"{URL}/{session.ocpi_id.upper()}", params={"duration": 900, "response_url": CALLBACK})
    delete = client.delete(f"{URL}/{session.ocpi_id}/", params={"response_url": CALLBACK})

    for response in (put, get, delete):
        assert answer(response) == (200, 1000, "ACCEPTED")
        assert response.json()["data"] == {"result": "ACCEPTED", "timeout": settings.OCPI_CHARGINGPROFILES_TIMEOUT}
    rows = list(ChargingProfileRequest.objects.order_by("pk").values_list("kind", "duration", "session_pk"))
    assert rows == [("SET", None, session.pk), ("ACTIVE", 900, session.pk), ("CLEAR", None, session.pk)]
    assert ChargingProfileRequest.objects.order_by("pk")[0].charging_profile == profile()


def test_unknown_session_and_a_session_of_another_emsp_are_unknown_session(ocpi, emsp, session):
    _, other_token = make_partner(name="other", roles=(("DE", "OTH", Role.EMSP),))
    body = {"charging_profile": profile(), "response_url": CALLBACK}

    unknown = ocpi(emsp[1]).put(f"{URL}/no-such-session", json=body)
    foreign = ocpi(other_token).put(f"{URL}/{session.ocpi_id}", json=body)

    assert answer(unknown) == (200, 1000, "UNKNOWN_SESSION")
    assert answer(foreign) == (200, 1000, "UNKNOWN_SESSION")
    assert not ChargingProfileRequest.objects.filter(response=ResponseType.ACCEPTED).exists()


def test_a_contracted_scsp_may_control_any_of_our_sessions(ocpi, session, own_parties):
    _, scsp_token = make_partner(name="scsp", roles=(("DE", "SCS", Role.SCSP),))

    response = ocpi(scsp_token).delete(f"{URL}/{session.ocpi_id}", params={"response_url": CALLBACK})

    assert answer(response) == (200, 1000, "ACCEPTED")
    row = ChargingProfileRequest.objects.get()
    assert (row.sender_country_code, row.sender_party_id) == ("DE", "SCS")


def test_a_session_that_is_not_active_is_rejected(ocpi, emsp, session):
    session_stop(session=session)

    response = ocpi(emsp[1]).get(f"{URL}/{session.ocpi_id}", params={"duration": 60, "response_url": CALLBACK})

    assert answer(response) == (200, 1000, "REJECTED")


def test_requests_quicker_than_the_interval_are_too_often(ocpi, emsp, session, settings):
    settings.OCPI_CHARGINGPROFILES_MIN_INTERVAL_SECONDS = 60
    client = ocpi(emsp[1])
    params = {"duration": 60, "response_url": CALLBACK}

    first = client.get(f"{URL}/{session.ocpi_id}", params=params)
    second = client.get(f"{URL}/{session.ocpi_id}", params=params)

    assert (answer(first)[2], answer(second)[2]) == ("ACCEPTED", "TOO_OFTEN")


def test_no_gateway_is_not_supported(ocpi, emsp, session, settings):
    settings.GATEWAY_DEFAULT_BACKEND = "no-such-backend"

    response = ocpi(emsp[1]).delete(f"{URL}/{session.ocpi_id}", params={"response_url": CALLBACK})

    assert answer(response) == (200, 1000, "NOT_SUPPORTED")


@pytest.mark.parametrize(
    ("method", "params", "body", "words"),
    [
        ("GET", {"response_url": CALLBACK}, None, "duration: is required"),
        ("GET", {"duration": "ten", "response_url": CALLBACK}, None, "duration: must be a non-negative integer"),
        ("GET", {"duration": "-5", "response_url": CALLBACK}, None, "duration: must be a non-negative integer"),
        ("GET", {"duration": 60}, None, "response_url: is required"),
        ("GET", {"duration": 60, "response_url": "ftp://x/y"}, None, "response_url: URL must be http(s)"),
        ("DELETE", {}, None, "response_url: is required"),
        ("DELETE", {"response_url": "http://" + "x" * 260}, None, "response_url: must be at most 255 characters"),
        ("PUT", None, {"response_url": CALLBACK}, "charging_profile: is required"),
        ("PUT", None, {"charging_profile": profile()}, "response_url: is required"),
        ("PUT", None, ["no"], "body: must be a JSON object"),
        ("PUT", None, {"charging_profile": profile(unit="kW"), "response_url": CALLBACK}, "charging_rate_unit"),
        ("PUT", None, {"charging_profile": {"charging_rate_unit": "W"}, "response_url": 5}, "response_url"),
        (
            "PUT",
            None,
            {"charging_profile": profile(limit=16.25, unit="A"), "response_url": CALLBACK},
            "charging_profile.charging_profile_period[0].limit: must be non-negative with at most one decimal",
        ),
        (
            "PUT",
            None,
            {"charging_profile": profile(min_charging_rate=-1), "response_url": CALLBACK},
            "charging_profile.min_charging_rate",
        ),
        (
            "PUT",
            None,
            {
                "charging_profile": {
                    "charging_rate_unit": "W",
                    "charging_profile_period": [{"start_period": 0, "limit": 1}, {"start_period": 0, "limit": 2}],
                },
                "response_url": CALLBACK,
            },
            "charging_profile.charging_profile_period[1].start_period: 0 appears twice",
        ),
        (
            "PUT",
            None,
            {
                "charging_profile": {"charging_rate_unit": "W", "charging_profile_period": [{"limit": 1}]},
                "response_url": CALLBACK,
            },
            "charging_profile.charging_profile_period[0].start_period: is required",
        ),
        (
            "PUT",
            None,
            {"charging_profile": profile(start_date_time="2024-01-01T00:00:00+02:00"), "response_url": CALLBACK},
            "charging_profile.start_date_time",
        ),
    ],
)
def test_invalid_requests_are_2001_naming_the_field_and_store_nothing(ocpi, emsp, session, method, params, body, words):
    response = ocpi(emsp[1]).request(method, f"{URL}/{session.ocpi_id}", params=params, json=body)

    payload = response.json()
    assert (response.status_code, payload["status_code"]) == (200, 2001), payload
    assert words in payload["status_message"]
    assert ChargingProfileRequest.objects.count() == 0


def test_a_session_id_longer_than_36_is_2001(ocpi, emsp, session):
    response = ocpi(emsp[1]).delete(f"{URL}/{'x' * 37}", params={"response_url": CALLBACK})

    assert (response.status_code, response.json()["status_code"]) == (200, 2001)
    assert "session_id" in response.json()["status_message"]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_post_and_patch_are_405(ocpi, emsp, session, method):
    response = ocpi(emsp[1]).request(method, f"{URL}/{session.ocpi_id}", json={})

    assert (response.status_code, response.json()["status_code"]) == (405, 2000)


def test_routing_headers_are_echoed_swapped_and_to_must_be_ours(ocpi, emsp, session):
    headers = {
        "OCPI-from-country-code": "DE",
        "OCPI-from-party-id": "PRT",
        "OCPI-to-country-code": "NL",
        "OCPI-to-party-id": "OWN",
    }
    client = ocpi(emsp[1])

    response = client.delete(f"{URL}/{session.ocpi_id}", params={"response_url": CALLBACK}, headers=headers)
    wrong = client.delete(
        f"{URL}/{session.ocpi_id}",
        params={"response_url": CALLBACK},
        headers={**headers, "OCPI-to-party-id": "XXX"},
    )

    assert answer(response) == (200, 1000, "ACCEPTED")
    assert (response.headers["OCPI-to-party-id"], response.headers["OCPI-from-party-id"]) == ("PRT", "OWN")
    assert wrong.status_code == 404
    assert ChargingProfileRequest.objects.filter(direction=Direction.RECEIVED).count() == 1


def test_version_details_list_receiver_and_sender(ocpi, emsp, ocpi_base_url):
    endpoints = ocpi(emsp[1]).get("/ocpi/2.2.1").json()["data"]["endpoints"]

    assert {"identifier": "chargingprofiles", "role": "RECEIVER", "url": f"{ocpi_base_url}{URL}"} in endpoints
    assert {
        "identifier": "chargingprofiles",
        "role": "SENDER",
        "url": f"{ocpi_base_url}/ocpi/2.2.1/emsp/chargingprofiles",
    } in endpoints
