"""eMSP side (REFERENCE §11.2): staff send commands to a partner CPO through the platform API; each has its own
response_url on our OCPI commands SENDER interface, where the CPO posts the CommandResult."""

from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.test import Client
from django.utils import timezone
from pytest_httpserver import HTTPServer

from commands.models import Command
from commands.services import command_watchdog
from commands.tests.factories import token_data
from conftest import envelope_body, make_partner
from locations.services import Key as LocationKey
from locations.services import location_put
from locations.tests.factories import location_data
from ocpi_core.models import Partner, PartnerEndpoint, Party
from sessions_app.services import Key as SessionKey
from sessions_app.services import session_put
from sessions_app.tests.factories import session_data

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cpo(own_parties: list[Party], httpserver: HTTPServer) -> tuple[Partner, str]:
    """A partner CPO (DE*CPX) whose commands Receiver is the local server."""
    partner, token = make_partner(name="cpo", roles=(("DE", "CPX", "CPO"),), base_url=httpserver.url_for("/ocpi"))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="commands", role="RECEIVER", url=httpserver.url_for("/ocpi/2.2.1/commands")
    )
    return partner, token


def _send(staff: Client, partner: Partner, **fields: Any) -> Any:
    token = token_data(country_code="NL", party_id="OWE")
    body = {"partner": partner.pk, "command_type": "START_SESSION", "token": token}
    body.update(fields)
    body = {name: value for name, value in body.items() if value is not None}
    return staff.post("/api/commands/", orjson.dumps(body), content_type="application/json")


def test_send_start_session_then_the_cpo_posts_the_result(
    staff: Client, cpo: tuple[Partner, str], httpserver: HTTPServer, ocpi: Any, ocpi_base_url: str
) -> None:
    partner, token = cpo
    httpserver.expect_request("/ocpi/2.2.1/commands/START_SESSION", method="POST").respond_with_data(
        envelope_body({"result": "ACCEPTED", "timeout": 45}), content_type="application/json"
    )

    response = _send(staff, partner, location_id="CPXLOC1", evse_uid="E1", authorization_reference="REF9")

    assert response.status_code == 201, response.content
    sent = orjson.loads(httpserver.log[0][0].get_data())
    command = Command.objects.get()
    assert sent["response_url"] == command.response_url
    assert command.response_url.startswith(f"{ocpi_base_url}/ocpi/2.2.1/emsp/commands/START_SESSION/")
    assert (sent["location_id"], sent["evse_uid"], sent["authorization_reference"]) == ("CPXLOC1", "E1", "REF9")
    assert httpserver.log[0][0].headers["OCPI-to-party-id"] == "CPX"
    assert (command.direction, command.state, command.response_result, command.response_timeout) == (
        "SENT",
        "WAITING",
        "ACCEPTED",
        45,
    )

    answer = ocpi(token).post(command.response_url, json={"result": "ACCEPTED"})

    assert (answer.status_code, answer.json()["status_code"]) == (200, 1000)
    assert "data" not in answer.json()
    command.refresh_from_db()
    assert (command.state, command.result) == ("DONE", "ACCEPTED")
    shown = staff.get(f"/api/commands/{command.pk}/").json()
    assert (shown["response_result"], shown["result"]) == ("ACCEPTED", "ACCEPTED")
    listed = staff.get("/api/commands/", {"direction": "SENT", "command_type": "START_SESSION"}).json()
    assert [c["id"] for c in listed["results"]] == [command.pk]
    assert staff.get("/api/commands/", {"direction": "RECEIVED"}).json()["count"] == 0


def test_result_callback_checks_caller_body_and_id(
    staff: Client, cpo: tuple[Partner, str], httpserver: HTTPServer, ocpi: Any, ocpi_base_url: str
) -> None:
    partner, token = cpo
    httpserver.expect_request("/ocpi/2.2.1/commands/STOP_SESSION", method="POST").respond_with_data(
        envelope_body({"result": "ACCEPTED", "timeout": 30}), content_type="application/json"
    )
    _send(staff, partner, command_type="STOP_SESSION", token=None, session_id="S1")
    command = Command.objects.get()
    _other, other_token = make_partner(name="other", roles=(("FR", "OTH", "CPO"),))

    assert ocpi(other_token).post(command.response_url, json={"result": "ACCEPTED"}).status_code == 404
    bad = ocpi(token).post(command.response_url, json={"result": "MAYBE"}).json()
    assert (bad["status_code"], bad["status_message"]) == (2001, "result: must be one of the CommandResultType values")
    unknown = ocpi(token).post("/ocpi/2.2.1/emsp/commands/STOP_SESSION/not-a-uuid", json={"result": "ACCEPTED"})
    assert unknown.status_code == 404
    command.refresh_from_db()
    assert (command.state, command.result) == ("WAITING", "")


def test_rejected_command_is_closed_and_bad_input_sends_nothing(
    staff: Client, cpo: tuple[Partner, str], httpserver: HTTPServer
) -> None:
    partner, _ = cpo
    httpserver.expect_request("/ocpi/2.2.1/commands/UNLOCK_CONNECTOR", method="POST").respond_with_data(
        envelope_body({"result": "REJECTED", "timeout": 0}), content_type="application/json"
    )
    response = _send(
        staff, partner, command_type="UNLOCK_CONNECTOR", token=None, location_id="L", evse_uid="E", connector_id="1"
    )
    assert response.json()["state"] == "CLOSED"
    assert response.json()["response_result"] == "REJECTED"

    missing = _send(staff, partner, command_type="UNLOCK_CONNECTOR", token=None, location_id="L")
    assert missing.status_code == 400
    assert "evse_uid" in missing.json()["detail"]
    assert Command.objects.count() == 1
    assert len(httpserver.log) == 1


def test_sent_command_without_result_is_marked_timed_out(
    staff: Client, cpo: tuple[Partner, str], httpserver: HTTPServer
) -> None:
    partner, _ = cpo
    httpserver.expect_request("/ocpi/2.2.1/commands/START_SESSION", method="POST").respond_with_data(
        envelope_body({"result": "ACCEPTED", "timeout": 10}), content_type="application/json"
    )
    _send(staff, partner, location_id="CPXLOC1")
    assert command_watchdog(now=timezone.now() + timedelta(seconds=30)) == 0

    assert command_watchdog(now=timezone.now() + timedelta(seconds=75)) == 1

    assert Command.objects.get().state == "TIMED_OUT"


def test_platform_api_needs_staff(cpo: tuple[Partner, str]) -> None:
    assert Client().get("/api/commands/").status_code == 401


def test_a_command_without_token_is_still_routed_from_our_emsp_to_the_cpo_owning_the_object(
    staff: Client, own_parties: list[Party], httpserver: HTTPServer
) -> None:
    """STOP_SESSION and UNLOCK_CONNECTOR carry no token: the request still names our eMSP party (OCPI-from-*) and
    the partner's CPO party owning the session or location (OCPI-to-*), not its first CPO party (REFERENCE §2.10)."""
    partner, _ = make_partner(
        name="cpo", roles=(("DE", "AAA", "CPO"), ("DE", "CPX", "CPO")), base_url=httpserver.url_for("/ocpi")
    )
    PartnerEndpoint.objects.create(
        partner=partner, identifier="commands", role="RECEIVER", url=httpserver.url_for("/ocpi/2.2.1/commands")
    )
    session_put(partner=partner, key=SessionKey("DE", "CPX", "SES1"), data=session_data("SES1", party_id="CPX"))
    location_put(
        partner=partner,
        key=LocationKey("DE", "CPX", "LOC7"),
        data=location_data("LOC7", country_code="DE", party_id="CPX"),
    )
    for command_type in ("STOP_SESSION", "UNLOCK_CONNECTOR"):
        httpserver.expect_request(f"/ocpi/2.2.1/commands/{command_type}", method="POST").respond_with_data(
            envelope_body({"result": "ACCEPTED", "timeout": 30}), content_type="application/json"
        )

    stop = _send(staff, partner, command_type="STOP_SESSION", token=None, session_id="SES1")
    unlock = _send(
        staff, partner, command_type="UNLOCK_CONNECTOR", token=None, location_id="LOC7", evse_uid="E1", connector_id="1"
    )

    assert (stop.status_code, unlock.status_code) == (201, 201), (stop.content, unlock.content)
    for request, _ in httpserver.log:
        routing = {name.lower(): value for name, value in request.headers.items() if name.lower().startswith("ocpi-")}
        assert routing == {
            "ocpi-from-country-code": "NL",
            "ocpi-from-party-id": "OWE",
            "ocpi-to-country-code": "DE",
            "ocpi-to-party-id": "CPX",
        }
