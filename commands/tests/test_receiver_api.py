"""CPO Receiver of commands (REFERENCE §11.1, §11.3) through real HTTP, carried out by the simulator gateway; the
CommandResult reaches a local HTTP server standing in for the eMSP."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from django.utils import timezone
from pytest_httpserver import HTTPServer

from commands.models import Command, Reservation
from commands.services import command_execute, command_result_send, command_watchdog, reservation_cancel_by_cpo
from commands.tests.factories import reserve_now, start_session, token_data
from conftest import envelope_body, make_partner
from gateway.models import SimulatedEvse, SimulatedSession
from locations.models import Evse
from locations.tests.factories import own_location
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, Party
from sessions_app.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/ocpi/2.2.1/cpo/commands"


@pytest.fixture
def emsp(own_parties: list[Party]) -> tuple[Partner, str]:
    """A partner eMSP (DE*PRT) and the token it presents to us."""
    return make_partner(name="emsp", roles=(("DE", "PRT", "EMSP"),))


@pytest.fixture
def location(own_parties: list[Party]) -> Any:
    """Our own location LOC1 with EVSEs LOC1-1 and LOC1-2 (one Type 2 connector "1" each, 11 kW)."""
    return own_location("LOC1", evses=2)


@pytest.fixture
def callback(httpserver: HTTPServer) -> Callable[[str], str]:
    """A response_url on the local eMSP server that answers every CommandResult with 1000."""

    def make(path: str = "/cb/1") -> str:
        httpserver.expect_request(path, method="POST").respond_with_data(
            envelope_body(), content_type="application/json"
        )
        return httpserver.url_for(path)

    return make


def results(httpserver: HTTPServer, path: str = "/cb/1") -> list[dict[str, Any]]:
    """The CommandResult bodies the eMSP server received on `path`."""
    return [orjson.loads(request.get_data()) for request, _ in httpserver.log if request.path == path]


def post(client: httpx.Client, command: str, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    response = client.post(f"{URL}/{command}", json=body, headers=headers)
    return response.status_code, response.json()


def run(command_id: int) -> Command:
    """What the Celery tasks do after the answer: gateway, then the POST of the CommandResult."""
    command_execute(command_id=command_id)
    command = Command.objects.get(pk=command_id)
    if command.result_delivery == Command.Delivery.PENDING:
        command_result_send(command_id=command_id)
    return Command.objects.get(pk=command_id)


def evse_status(uid: str) -> str:
    return Evse.objects.get(uid=uid).status


# --- START_SESSION ---


def test_start_session_answers_accepted_then_starts_and_posts_result(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any, httpserver: HTTPServer
) -> None:
    partner, token = emsp
    PartnerEndpoint.objects.create(
        partner=partner, identifier="sessions", role="RECEIVER", url="http://127.0.0.1:9/ocpi/2.2.1/sessions"
    )
    body = start_session(callback(), evse_uid="LOC1-1", connector_id="1", authorization_reference="AUTH-REF-1")

    status, answer = post(ocpi(token), "START_SESSION", body)

    assert (status, answer["status_code"]) == (200, 1000)
    assert answer["data"] == {"result": "ACCEPTED", "timeout": 30}
    command = Command.objects.get()
    assert (command.direction, command.partner, command.state) == ("RECEIVED", partner, "WAITING")
    assert command.gateway == "simulator"

    command = run(command.pk)

    assert (command.state, command.result, command.result_delivery) == ("DONE", "ACCEPTED", "DELIVERED")
    assert results(httpserver) == [{"result": "ACCEPTED"}]
    posted = httpserver.log[0][0].headers
    assert (posted["OCPI-from-party-id"], posted["OCPI-to-party-id"]) == ("OWN", "PRT")
    assert posted["Authorization"].startswith("Token ")
    session = Session.objects.get()
    assert session.status == "ACTIVE"
    assert session.authorization_reference == "AUTH-REF-1"
    assert session.auth_method == "COMMAND"
    assert session.cdr_token["uid"] == "APP0001"
    assert (session.evse_uid, session.connector_id) == ("LOC1-1", "1")
    assert evse_status("LOC1-1") == "CHARGING"
    pushed = Delivery.objects.get(partner=partner, module="sessions")  # the Session goes to the eMSP (outbox)
    assert (pushed.object_path, pushed.method) == (session.ocpi_id, "PUT")


def test_start_session_without_evse_lets_the_charger_choose(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any
) -> None:
    _partner, token = emsp
    _status, answer = post(ocpi(token), "START_SESSION", start_session(callback()))
    assert answer["data"]["result"] == "ACCEPTED"

    command = run(Command.objects.get().pk)

    assert command.result == "ACCEPTED"
    assert Session.objects.get().evse_uid in ("LOC1-1", "LOC1-2")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("token"), "token: is required"),
        (lambda b: b.pop("response_url"), "response_url: is required"),
        (lambda b: b.update(location_id="L" * 37), "location_id: must be at most 36 characters"),
        (lambda b: b["token"].update(type="PHONE"), "token.type: must be one of the TokenType values"),
        (lambda b: b.update(connector_id="1"), "evse_uid: is required when connector_id is given"),
        (lambda b: b.update(response_url="ftp://example.com/x"), "response_url:"),
    ],
)
def test_start_session_bad_body_is_2001_naming_the_field(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, change: Callable[[dict[str, Any]], Any], field: str
) -> None:
    _partner, token = emsp
    body = start_session("http://127.0.0.1:1/cb")
    change(body)

    status, answer = post(ocpi(token), "START_SESSION", body)

    assert (status, answer["status_code"]) == (200, 2001)
    assert field in answer["status_message"]
    assert not Command.objects.exists()


def test_body_not_an_object_is_2001(ocpi: Any, emsp: tuple[Partner, str]) -> None:
    _partner, token = emsp
    status, answer = post(ocpi(token), "STOP_SESSION", [1, 2])
    assert (status, answer["status_code"]) == (200, 2001)


def test_unknown_command_type_is_404_with_2001(ocpi: Any, emsp: tuple[Partner, str]) -> None:
    _partner, token = emsp
    status, answer = post(ocpi(token), "SELF_DESTRUCT", {"response_url": "http://127.0.0.1:1/cb"})
    assert (status, answer["status_code"]) == (404, 2001)
    assert "START_SESSION" in answer["status_message"]


def test_get_is_not_allowed(ocpi: Any, emsp: tuple[Partner, str]) -> None:
    _partner, token = emsp
    response = ocpi(token).get(f"{URL}/START_SESSION")
    assert response.status_code == 405
    assert response.json()["status_code"] == 2000


@pytest.mark.parametrize(
    ("command", "body"),
    [
        ("START_SESSION", start_session("http://127.0.0.1:1/cb", location_id="NOPE")),
        ("RESERVE_NOW", reserve_now("http://127.0.0.1:1/cb", location_id="NOPE")),
        (
            "UNLOCK_CONNECTOR",
            {"response_url": "http://127.0.0.1:1/cb", "location_id": "NOPE", "evse_uid": "LOC1-1", "connector_id": "1"},
        ),
    ],
)
def test_unknown_location_is_http_200_with_2003_and_rejected(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, command: str, body: dict[str, Any]
) -> None:
    """The request is valid JSON for an existing endpoint: no HTTP error (status_codes), 2003 in the envelope and a
    REJECTED CommandResponse in `data`, as the spec's UNLOCK_CONNECTOR diagram shows."""
    _partner, token = emsp
    status, answer = post(ocpi(token), command, body)
    assert (status, answer["status_code"]) == (200, 2003)
    assert answer["data"]["result"] == "REJECTED"
    assert isinstance(answer["data"]["timeout"], int)
    assert not Command.objects.exists()


def test_without_token_is_401(ocpi: Any, location: Any) -> None:
    response = ocpi().post(f"{URL}/START_SESSION", json=start_session("http://127.0.0.1:1/cb"))
    assert response.status_code == 401
    assert response.json()["status_code"] == 2000


def test_connector_required_evse_needs_connector_id(ocpi: Any, emsp: tuple[Partner, str], location: Any) -> None:
    _partner, token = emsp
    Evse.objects.filter(uid="LOC1-1").update(
        capabilities=["REMOTE_START_STOP_CAPABLE", "START_SESSION_CONNECTOR_REQUIRED"]
    )
    status, answer = post(ocpi(token), "START_SESSION", start_session("http://127.0.0.1:1/cb", evse_uid="LOC1-1"))
    assert (status, answer["status_code"]) == (200, 2001)
    assert answer["status_message"].startswith("connector_id:")

    status, answer = post(
        ocpi(token), "START_SESSION", start_session("http://127.0.0.1:1/cb", evse_uid="LOC1-1", connector_id="1")
    )
    assert answer["data"]["result"] == "ACCEPTED"


def test_unknown_evse_or_connector_is_rejected(ocpi: Any, emsp: tuple[Partner, str], location: Any) -> None:
    _partner, token = emsp
    _s, answer = post(ocpi(token), "START_SESSION", start_session("http://127.0.0.1:1/cb", evse_uid="NOPE"))
    assert answer["data"]["result"] == "REJECTED"
    assert answer["data"]["timeout"] == 0
    _s, answer = post(
        ocpi(token), "START_SESSION", start_session("http://127.0.0.1:1/cb", evse_uid="LOC1-1", connector_id="9")
    )
    assert answer["data"]["result"] == "REJECTED"
    assert Command.objects.filter(state="CLOSED").count() == 2


def test_evse_without_remote_start_capability_is_not_supported(
    ocpi: Any, emsp: tuple[Partner, str], location: Any
) -> None:
    _partner, token = emsp
    Evse.objects.filter(uid="LOC1-1").update(capabilities=["RFID_READER"])
    _s, answer = post(ocpi(token), "START_SESSION", start_session("http://127.0.0.1:1/cb", evse_uid="LOC1-1"))
    assert answer["data"]["result"] == "NOT_SUPPORTED"


def test_token_of_another_emsp_is_rejected(ocpi: Any, emsp: tuple[Partner, str], location: Any) -> None:
    _partner, token = emsp
    body = start_session("http://127.0.0.1:1/cb", token=token_data(country_code="FR", party_id="XYZ"))
    _s, answer = post(ocpi(token), "START_SESSION", body)
    assert answer["data"]["result"] == "REJECTED"
    assert "own tokens" in answer["data"]["message"][0]["text"]


@pytest.mark.parametrize(("behaviour", "result"), [("REJECT", "REJECTED"), ("FAIL", "FAILED")])
def test_simulated_evse_behaviour_decides_the_result(
    ocpi: Any,
    emsp: tuple[Partner, str],
    location: Any,
    callback: Any,
    httpserver: HTTPServer,
    behaviour: str,
    result: str,
) -> None:
    _partner, token = emsp
    SimulatedEvse.objects.create(evse=Evse.objects.get(uid="LOC1-1"), behaviour=behaviour)
    post(ocpi(token), "START_SESSION", start_session(callback(), evse_uid="LOC1-1"))

    command = run(Command.objects.get().pk)

    assert command.result == result
    assert results(httpserver) == [{"result": result}]
    assert not Session.objects.exists()
    assert evse_status("LOC1-1") == "AVAILABLE"


def test_occupied_evse_gives_evse_occupied(ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any) -> None:
    _partner, token = emsp
    client = ocpi(token)
    post(client, "START_SESSION", start_session(callback(), evse_uid="LOC1-1"))
    run(Command.objects.get().pk)
    post(client, "START_SESSION", start_session(callback("/cb/2"), evse_uid="LOC1-1"))

    command = run(Command.objects.order_by("pk").last().pk)  # type: ignore[union-attr]

    assert command.result == "EVSE_OCCUPIED"


def test_watchdog_answers_timeout_when_the_charger_is_silent(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any, httpserver: HTTPServer
) -> None:
    _partner, token = emsp
    SimulatedEvse.objects.create(evse=Evse.objects.get(uid="LOC1-1"), behaviour="NO_ANSWER")
    post(ocpi(token), "START_SESSION", start_session(callback(), evse_uid="LOC1-1"))
    command = Command.objects.get()
    assert command_execute(command_id=command.pk) is None
    assert command_watchdog() == 0  # not due yet

    assert command_watchdog(now=timezone.now() + timedelta(seconds=31)) == 1
    command_result_send(command_id=command.pk)

    command.refresh_from_db()
    assert (command.state, command.result, command.result_delivery) == ("TIMED_OUT", "TIMEOUT", "DELIVERED")
    assert results(httpserver) == [{"result": "TIMEOUT"}]


def test_result_post_refused_by_the_emsp_is_not_retried(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, httpserver: HTTPServer
) -> None:
    _partner, token = emsp
    httpserver.expect_request("/cb/x", method="POST").respond_with_data(
        envelope_body(status_code=2001), status=400, content_type="application/json"
    )
    post(ocpi(token), "START_SESSION", start_session(httpserver.url_for("/cb/x"), evse_uid="LOC1-1"))
    command = Command.objects.get()
    command_execute(command_id=command.pk)

    assert command_result_send(command_id=command.pk) is False

    command.refresh_from_db()
    assert command.result_delivery == "FAILED"
    assert "2001" in command.result_error


def test_result_post_to_a_dead_url_is_retried_a_few_times(ocpi: Any, emsp: tuple[Partner, str], location: Any) -> None:
    _partner, token = emsp
    post(ocpi(token), "START_SESSION", start_session("http://127.0.0.1:9/cb", evse_uid="LOC1-1"))
    command = Command.objects.get()
    command_execute(command_id=command.pk)

    assert [command_result_send(command_id=command.pk, attempt=n) for n in (1, 2, 3)] == [True, True, False]
    command.refresh_from_db()
    assert (command.result_delivery, command.result_attempts) == ("FAILED", 3)


# --- STOP_SESSION ---


def _started(ocpi: Any, token: str, callback: Any) -> Session:
    post(ocpi(token), "START_SESSION", start_session(callback(), evse_uid="LOC1-1"))
    run(Command.objects.get(command_type="START_SESSION").pk)
    return Session.objects.get()


def test_stop_session_completes_the_session(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any, httpserver: HTTPServer
) -> None:
    _partner, token = emsp
    session = _started(ocpi, token, callback)

    _s, answer = post(
        ocpi(token), "STOP_SESSION", {"response_url": callback("/cb/stop"), "session_id": session.ocpi_id}
    )

    assert answer["data"] == {"result": "ACCEPTED", "timeout": 30}
    command = run(Command.objects.get(command_type="STOP_SESSION").pk)
    assert command.result == "ACCEPTED"
    assert results(httpserver, "/cb/stop") == [{"result": "ACCEPTED"}]
    session.refresh_from_db()
    assert session.status == "COMPLETED"
    assert session.end_date_time is not None
    assert evse_status("LOC1-1") == "AVAILABLE"


def test_stop_unknown_session_is_unknown_session(ocpi: Any, emsp: tuple[Partner, str], location: Any) -> None:
    _partner, token = emsp
    status, answer = post(ocpi(token), "STOP_SESSION", {"response_url": "http://127.0.0.1:1/cb", "session_id": "NOPE"})
    assert (status, answer["status_code"]) == (200, 1000)
    assert answer["data"]["result"] == "UNKNOWN_SESSION"
    assert Command.objects.get().state == "CLOSED"


def test_stop_of_another_emsps_session_is_rejected(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any
) -> None:
    _partner, token = emsp
    session = _started(ocpi, token, callback)
    _other, other_token = make_partner(name="other", roles=(("FR", "OTH", "EMSP"),))

    _s, answer = post(
        ocpi(other_token), "STOP_SESSION", {"response_url": "http://127.0.0.1:1/cb", "session_id": session.ocpi_id}
    )

    assert answer["data"]["result"] == "REJECTED"
    session.refresh_from_db()
    assert session.status == "ACTIVE"


def test_a_hub_relays_only_the_requesting_partys_tokens_and_sessions(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any
) -> None:
    """Via a hub, `OCPI-from-*` is the requesting party (transport_and_format "Party to Party via Hub"): "eMSPs may
    only use their own tokens", and a session of another eMSP is REJECTED (REFERENCE §11.3), also when relayed."""
    _partner, token = emsp
    session = _started(ocpi, token, callback)  # DE*PRT's
    _hub, hub_token = make_partner(name="hub", roles=(("NL", "HUB", "HUB"),))
    relayed = {"OCPI-from-country-code": "FR", "OCPI-from-party-id": "XYZ"}
    hub = ocpi(hub_token)

    _s, stop = post(hub, "STOP_SESSION", {"response_url": callback("/cb/h"), "session_id": session.ocpi_id}, **relayed)
    _s, start_other = post(hub, "START_SESSION", start_session(callback("/cb/h"), evse_uid="LOC1-2"), **relayed)
    own_token = token_data(country_code="fr", party_id="xyz")
    _s, start_own = post(
        hub, "START_SESSION", start_session(callback("/cb/h"), evse_uid="LOC1-2", token=own_token), **relayed
    )

    assert (stop["data"]["result"], start_other["data"]["result"]) == ("REJECTED", "REJECTED")
    assert start_own["data"]["result"] == "ACCEPTED"
    session.refresh_from_db()
    assert session.status == "ACTIVE"


# --- RESERVE_NOW / CANCEL_RESERVATION ---


def test_reserve_now_creates_a_reservation_session(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any, httpserver: HTTPServer
) -> None:
    _partner, token = emsp
    _s, answer = post(ocpi(token), "RESERVE_NOW", reserve_now(callback(), evse_uid="LOC1-1"))
    assert answer["data"]["result"] == "ACCEPTED"

    command = run(Command.objects.get().pk)

    assert command.result == "ACCEPTED"
    assert results(httpserver) == [{"result": "ACCEPTED"}]
    session = Session.objects.get()
    assert (session.status, session.evse_uid) == ("RESERVATION", "LOC1-1")
    assert evse_status("LOC1-1") == "RESERVED"
    assert Reservation.objects.get().status == "ACTIVE"


def test_reserve_now_with_the_same_reservation_id_replaces(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any
) -> None:
    _partner, token = emsp
    client = ocpi(token)
    post(client, "RESERVE_NOW", reserve_now(callback(), evse_uid="LOC1-1"))
    run(Command.objects.get().pk)

    post(client, "RESERVE_NOW", reserve_now(callback("/cb/2"), evse_uid="LOC1-2"))
    command = run(Command.objects.order_by("pk").last().pk)  # type: ignore[union-attr]

    assert command.result == "ACCEPTED"
    reservation = Reservation.objects.get()
    assert (reservation.status, reservation.evse_uid, reservation.command) == ("ACTIVE", "LOC1-2", command)
    assert (evse_status("LOC1-1"), evse_status("LOC1-2")) == ("AVAILABLE", "RESERVED")
    assert sorted(Session.objects.values_list("evse_uid", "status")) == [
        ("LOC1-1", "INVALID"),
        ("LOC1-2", "RESERVATION"),
    ]


def test_reservations_are_isolated_per_emsp(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any, httpserver: HTTPServer
) -> None:
    _partner, token = emsp
    post(ocpi(token), "RESERVE_NOW", reserve_now(callback(), evse_uid="LOC1-1"))
    run(Command.objects.get().pk)
    _other, other_token = make_partner(name="other", roles=(("FR", "OTH", "EMSP"),))

    _s, answer = post(
        ocpi(other_token), "CANCEL_RESERVATION", {"response_url": callback("/cb/other"), "reservation_id": "RES1"}
    )
    command = run(Command.objects.get(command_type="CANCEL_RESERVATION").pk)

    assert answer["data"]["result"] == "ACCEPTED"
    assert command.result == "UNKNOWN_RESERVATION"
    assert results(httpserver, "/cb/other") == [{"result": "UNKNOWN_RESERVATION"}]
    assert Reservation.objects.get().status == "ACTIVE"
    assert evse_status("LOC1-1") == "RESERVED"

    post(ocpi(token), "CANCEL_RESERVATION", {"response_url": callback("/cb/mine"), "reservation_id": "RES1"})
    command = run(Command.objects.order_by("pk").last().pk)  # type: ignore[union-attr]

    assert command.result == "ACCEPTED"
    assert Reservation.objects.get().status == "CANCELED"
    assert evse_status("LOC1-1") == "AVAILABLE"
    assert Session.objects.get().status == "INVALID"


def test_result_for_an_unknown_reservation_carries_the_routing_headers(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any, httpserver: HTTPServer
) -> None:
    """The CommandResult is a request of a functional module: from our CPO party to the eMSP party (REFERENCE
    §2.10), also when no reservation tells which of our parties it concerns."""
    _partner, token = emsp

    post(ocpi(token), "CANCEL_RESERVATION", {"response_url": callback(), "reservation_id": "NO-SUCH-RES"})
    command = run(Command.objects.get().pk)

    assert (command.result, command.result_delivery) == ("UNKNOWN_RESERVATION", "DELIVERED")
    assert results(httpserver) == [{"result": "UNKNOWN_RESERVATION"}]
    posted = httpserver.log[0][0].headers
    assert (posted.get("OCPI-from-country-code"), posted.get("OCPI-from-party-id")) == ("NL", "OWN")
    assert (posted.get("OCPI-to-country-code"), posted.get("OCPI-to-party-id")) == ("DE", "PRT")


def test_reserved_driver_starts_on_the_reserved_evse(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any
) -> None:
    _partner, token = emsp
    post(ocpi(token), "RESERVE_NOW", reserve_now(callback(), evse_uid="LOC1-1"))
    run(Command.objects.get().pk)

    post(ocpi(token), "START_SESSION", start_session(callback("/cb/2"), evse_uid="LOC1-1"))
    command = run(Command.objects.get(command_type="START_SESSION").pk)

    assert command.result == "ACCEPTED"
    assert Session.objects.get().status == "ACTIVE"
    assert SimulatedSession.objects.get().kind == "CHARGING"
    assert evse_status("LOC1-1") == "CHARGING"
    assert Reservation.objects.get().status == "ENDED"  # used


def test_expired_reservation_ends(ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any) -> None:
    _partner, token = emsp
    post(ocpi(token), "RESERVE_NOW", reserve_now(callback(), evse_uid="LOC1-1"))
    run(Command.objects.get().pk)

    command_watchdog(now=timezone.now() + timedelta(hours=2))

    assert Reservation.objects.get().status == "ENDED"


def test_request_for_another_platforms_party_is_404(ocpi: Any, emsp: tuple[Partner, str], location: Any) -> None:
    _partner, token = emsp
    headers = {
        "OCPI-from-country-code": "DE",
        "OCPI-from-party-id": "PRT",
        "OCPI-to-country-code": "BE",
        "OCPI-to-party-id": "XXX",
    }
    status, answer = post(ocpi(token), "START_SESSION", start_session("http://127.0.0.1:1/cb"), **headers)
    assert (status, answer["status_code"]) == (404, 2000)
    assert not Command.objects.exists()


def test_reserve_now_in_the_past_is_rejected(ocpi: Any, emsp: tuple[Partner, str], location: Any) -> None:
    _partner, token = emsp
    body = reserve_now("http://127.0.0.1:1/cb", expiry_date="2020-01-01T00:00:00Z")
    _s, answer = post(ocpi(token), "RESERVE_NOW", body)
    assert answer["data"]["result"] == "REJECTED"
    assert not Reservation.objects.exists()


def test_cpo_cancels_a_reservation_on_the_original_response_url(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any, httpserver: HTTPServer
) -> None:
    _partner, token = emsp
    post(ocpi(token), "RESERVE_NOW", reserve_now(callback(), evse_uid="LOC1-1"))
    run(Command.objects.get().pk)
    reservation = Reservation.objects.get()

    reservation_cancel_by_cpo(reservation=reservation, message="Charger broken")
    from commands.services import reservation_canceled_send

    reservation_canceled_send(reservation_id=reservation.pk, message="Charger broken")

    assert results(httpserver)[-1] == {
        "result": "CANCELED_RESERVATION",
        "message": [{"language": "en", "text": "Charger broken"}],
    }
    assert Reservation.objects.get().status == "CANCELED"


# --- UNLOCK_CONNECTOR ---


def test_unlock_connector(
    ocpi: Any, emsp: tuple[Partner, str], location: Any, callback: Any, httpserver: HTTPServer
) -> None:
    _partner, token = emsp
    body = {"response_url": callback(), "location_id": "LOC1", "evse_uid": "LOC1-2", "connector_id": "1"}
    _s, answer = post(ocpi(token), "UNLOCK_CONNECTOR", body)
    assert answer["data"]["result"] == "ACCEPTED"

    assert run(Command.objects.get().pk).result == "ACCEPTED"
    assert results(httpserver) == [{"result": "ACCEPTED"}]


def test_unlock_connector_requires_all_ids(ocpi: Any, emsp: tuple[Partner, str], location: Any) -> None:
    _partner, token = emsp
    body = {"response_url": "http://127.0.0.1:1/cb", "location_id": "LOC1", "evse_uid": "LOC1-2"}
    status, answer = post(ocpi(token), "UNLOCK_CONNECTOR", body)
    assert (status, answer["status_code"]) == (200, 2001)
    assert "connector_id: is required" in answer["status_message"]
