"""Back-office pages of commands and the gateway: lists, detail with timeline, the "Send command" form and the CPO's
cancellation of a reservation."""

from typing import Any

import orjson
import pytest
from django.test import Client
from django.urls import reverse
from pytest_httpserver import HTTPServer

from commands.models import Command, Reservation
from commands.services import command_execute
from commands.tests.factories import reserve_now
from conftest import envelope_body, make_partner
from gateway.models import LocationGateway, SimulatedEvse
from gateway.services import simulated_evse_set
from locations.models import Evse
from locations.tests.factories import own_location
from ocpi_core.models import PartnerEndpoint, Party

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_page_loads(admin_client: Client, ocpi: Any, own_parties: list[Party]) -> None:
    location = own_location("LOC1", evses=1)
    _partner, token = make_partner(name="emsp", roles=(("DE", "PRT", "EMSP"),))
    ocpi(token).post("/ocpi/2.2.1/cpo/commands/RESERVE_NOW", json=reserve_now("http://127.0.0.1:9/cb"))
    command = Command.objects.get()
    command_execute(command_id=command.pk)
    LocationGateway.objects.create(location=location, backend="simulator")
    simulated_evse_set(evse=Evse.objects.get(uid="LOC1-1"), behaviour="ACCEPT")

    for name, args in [
        ("admin:commands_command_changelist", ()),
        ("admin:commands_command_change", (command.pk,)),
        ("admin:commands_command_send", ()),
        ("admin:commands_reservation_changelist", ()),
        ("admin:commands_reservation_change", (Reservation.objects.get().pk,)),
        ("admin:gateway_locationgateway_changelist", ()),
        ("admin:gateway_simulatedevse_changelist", ()),
        ("admin:gateway_simulatedsession_changelist", ()),
    ]:
        response = admin_client.get(reverse(name, args=args))
        assert response.status_code == 200, name
    page = admin_client.get(reverse("admin:commands_command_change", args=(command.pk,))).content.decode()
    assert "response ACCEPTED" in page
    assert "result ACCEPTED" in page
    filtered = admin_client.get(reverse("admin:commands_command_changelist") + "?direction=SENT")
    assert "0 commands" in filtered.content.decode() or "0 results" in filtered.content.decode()


def test_send_command_form(admin_client: Client, own_parties: list[Party], httpserver: HTTPServer) -> None:
    partner, _ = make_partner(name="cpo", roles=(("DE", "CPX", "CPO"),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="commands", role="RECEIVER", url=httpserver.url_for("/commands")
    )
    httpserver.expect_request("/commands/START_SESSION", method="POST").respond_with_data(
        envelope_body({"result": "ACCEPTED", "timeout": 30}), content_type="application/json"
    )
    emsp = Party.objects.get(party_id="OWE")

    response = admin_client.post(
        reverse("admin:commands_command_send"),
        {"partner": partner.pk, "command": "START_SESSION", "emsp": emsp.pk, "token_uid": "APP9", "location_id": "L1"},
    )

    command = Command.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:commands_command_change", args=(command.pk,))
    sent = orjson.loads(httpserver.log[0][0].get_data())
    assert (sent["token"]["uid"], sent["token"]["party_id"], sent["location_id"]) == ("APP9", "OWE", "L1")
    assert (command.direction, command.response_result) == ("SENT", "ACCEPTED")

    missing = admin_client.post(
        reverse("admin:commands_command_send"), {"partner": partner.pk, "command": "START_SESSION", "emsp": emsp.pk}
    )
    assert missing.status_code == 200
    assert "token: is required" in missing.content.decode()
    assert Command.objects.count() == 1


def test_cpo_cancels_a_reservation_from_the_admin(
    admin_client: Client, ocpi: Any, own_parties: list[Party], httpserver: HTTPServer
) -> None:
    own_location("LOC1", evses=1)
    _partner, token = make_partner(name="emsp", roles=(("DE", "PRT", "EMSP"),))
    httpserver.expect_request("/cb", method="POST").respond_with_data(envelope_body(), content_type="application/json")
    ocpi(token).post("/ocpi/2.2.1/cpo/commands/RESERVE_NOW", json=reserve_now(httpserver.url_for("/cb")))
    command_execute(command_id=Command.objects.get().pk)
    assert Evse.objects.get(uid="LOC1-1").status == "RESERVED"
    reservation = Reservation.objects.get()

    admin_client.post(
        reverse("admin:commands_reservation_changelist"),
        {"action": "cancel_reservations", "_selected_action": [reservation.pk]},
    )

    reservation.refresh_from_db()
    assert reservation.status == "CANCELED"
    assert Evse.objects.get(uid="LOC1-1").status == "AVAILABLE"  # the charger was freed through the gateway


def test_simulated_evse_behaviour_is_editable(admin_client: Client, own_parties: list[Party]) -> None:
    own_location("LOC1", evses=1)
    evse = Evse.objects.get(uid="LOC1-1")
    response = admin_client.post(
        reverse("admin:gateway_simulatedevse_add"), {"evse": evse.pk, "behaviour": "NO_ANSWER", "power_kw": "7.4"}
    )
    assert response.status_code == 302
    assert SimulatedEvse.objects.get().behaviour == "NO_ANSWER"
